// Mappings that survive truncation: a process-wide SIGBUS handler and the registry of our shared mappings it
// consults (sigbus.cc). A segment shrunk by anyone (ftruncate) makes the next access to its pages raise
// SIGBUS; for a fault inside one of our mappings the handler maps anonymous zero pages over that mapping, marks
// it faulted and bumps a process-wide epoch word that JavaScript polls. Other faults go to the previous handler.
#pragma once
#include <cstddef>
#include <cstdint>

namespace shmx {

// Installs the SIGBUS handler, once per process (the addon is loaded once per environment; later calls do
// nothing). Returns false when sigaction failed (the process then runs unprotected, as before).
bool InstallTruncationHandler();

// Registers [data, data + length) as one of our shared mappings. False when the table is full.
bool RegisterMapping(void* data, size_t length);

// Forgets the mapping that starts at `data`, then unmaps it. Safe on any thread. Forgetting first means the
// handler never maps zero pages over an address range something else was given after the munmap.
void ReleaseMapping(void* data, size_t length);

// True when the registered mapping that starts at `data` has been truncated (and replaced by zero pages).
bool MappingFaulted(const void* data);

// What the handler does, for native code that learnt of a truncation from a system call (futex: EFAULT)
// instead of a signal: when `addr` lies in one of our mappings, maps zero pages over it, marks it faulted,
// bumps the epoch and returns true. Async-signal-safe.
bool FaultMappingAt(const void* addr);

// The process-wide fault epoch (bumped once per faulted mapping) and its companion words; kEpochWords int32s.
constexpr size_t kEpochWords = 2;
int32_t* FaultEpochWords();

}  // namespace shmx
