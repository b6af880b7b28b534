// The process-wide SIGBUS handler and the registry of our shared mappings (see sigbus.h).
//
// Why: any process that can open a segment can ftruncate it. The pages past the new end are gone, and the next
// load or store through any mapping of them raises SIGBUS, whose default action kills the process — the server
// with every session. The handler turns that into a fault of the one mapping: anonymous zero pages are mapped
// over it with MAP_FIXED, so the faulting instruction, when it is re-executed, and every later access succeed
// on private memory nobody else sees; the owner learns of it through the epoch word and MappingFaulted().
//
// Everything the handler touches is a fixed-size table of atomics (no allocation, no locks): it can run on any
// thread, in the middle of anything. Registration and removal use the same atomics, from any thread (removal
// runs in the SharedArrayBuffer deleter, wherever V8 frees the backing store).
#include "sigbus.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace shmx {
namespace {

// Slot states. kBusy: a thread is filling, removing or repairing the slot; readers wait or skip.
constexpr uint32_t kFree = 0, kBusy = 1, kLive = 2;

struct Slot {
  std::atomic<uint32_t> state{kFree};
  std::atomic<uint32_t> faulted{0};
  std::atomic<uintptr_t> start{0};
  std::atomic<uintptr_t> end{0};
};

// Enough for every segment of hundreds of sessions (each arena has at most 65 segments); a process past it
// gets a clear error at shmMap instead of an unprotected mapping.
constexpr size_t kSlots = 16384;
Slot g_slots[kSlots];
// Slots at and past this index have never been used: scans stop here.
std::atomic<size_t> g_high{0};

alignas(64) int32_t g_epoch[kEpochWords];

struct sigaction g_previous;
std::atomic<bool> g_installed{false};

static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uintptr_t>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

void Pause() { sched_yield(); }

// Maps zero pages over the slot's range (the slot is kBusy, held by the caller). Async-signal-safe: mmap is a
// plain system call. False when the kernel refused (then nothing changed).
bool Repair(Slot& slot) {
  uintptr_t start = slot.start.load(std::memory_order_relaxed);
  uintptr_t end = slot.end.load(std::memory_order_relaxed);
  int saved = errno;
  void* got = mmap(reinterpret_cast<void*>(start), end - start, PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  if (got == MAP_FAILED) return false;
  slot.faulted.store(1, std::memory_order_release);
  __atomic_fetch_add(&g_epoch[0], 1, __ATOMIC_SEQ_CST);
  return true;
}

// Finds the live slot containing `addr` and repairs it. Returns true when `addr` is ours and now readable
// (repaired here or by a thread that faulted on the same mapping at the same moment).
bool RepairAt(uintptr_t addr) {
  size_t high = g_high.load(std::memory_order_acquire);
  for (size_t i = 0; i < high; i++) {
    Slot& slot = g_slots[i];
    for (;;) {
      uint32_t state = slot.state.load(std::memory_order_acquire);
      if (state == kFree) break;
      uintptr_t start = slot.start.load(std::memory_order_relaxed);
      uintptr_t end = slot.end.load(std::memory_order_relaxed);
      if (state == kBusy) {
        // Being filled, removed or repaired. Only a repair concerns a fault of ours: wait it out and look again.
        if (addr >= start && addr < end) {
          Pause();
          continue;
        }
        break;
      }
      if (addr < start || addr >= end) break;
      if (slot.faulted.load(std::memory_order_acquire) != 0) return true;  // already zero pages
      uint32_t expected = kLive;
      if (!slot.state.compare_exchange_strong(expected, kBusy, std::memory_order_acq_rel)) continue;
      bool ok = Repair(slot);
      slot.state.store(kLive, std::memory_order_release);
      return ok;
    }
  }
  return false;
}

// Runs the handler that was installed before ours, as the kernel would have run it.
void Chain(int sig, siginfo_t* info, void* context) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler == SIG_IGN) {
    // An ignored SIGBUS sent by kill() is ignored; a hardware fault cannot be: the kernel forces the default.
    if (info->si_code <= 0) return;
  } else if (g_previous.sa_handler != SIG_DFL) {
    g_previous.sa_handler(sig);
    return;
  }
  // Default action: restore it and re-raise. The signal is blocked while we run, so it is delivered (and
  // kills, with a core where enabled) as soon as we return; a hardware fault would also re-fault on return.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);
  raise(SIGBUS);
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  // Only a fault raised by the kernel for a memory access carries a meaningful si_addr (si_code > 0).
  if (info != nullptr && info->si_code > 0 && RepairAt(reinterpret_cast<uintptr_t>(info->si_addr))) return;
  Chain(sig, info, context);
}

}  // namespace

bool InstallTruncationHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction ours;
    std::memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = OnSigbus;
    // SA_ONSTACK: use the thread's alternate stack when it has one (as other fault handlers expect);
    // SA_RESTART: an interrupted system call of the faulting thread resumes.
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&ours.sa_mask);
    if (sigaction(SIGBUS, &ours, &g_previous) == 0) g_installed.store(true);
  });
  return g_installed.load();
}

bool RegisterMapping(void* data, size_t length) {
  uintptr_t start = reinterpret_cast<uintptr_t>(data);
  for (size_t i = 0; i < kSlots; i++) {
    Slot& slot = g_slots[i];
    uint32_t expected = kFree;
    if (!slot.state.compare_exchange_strong(expected, kBusy, std::memory_order_acq_rel)) continue;
    slot.start.store(start, std::memory_order_relaxed);
    slot.end.store(start + length, std::memory_order_relaxed);
    slot.faulted.store(0, std::memory_order_relaxed);
    size_t high = g_high.load(std::memory_order_relaxed);
    while (high < i + 1 && !g_high.compare_exchange_weak(high, i + 1, std::memory_order_acq_rel)) {
    }
    slot.state.store(kLive, std::memory_order_release);
    return true;
  }
  return false;
}

void ReleaseMapping(void* data, size_t length) {
  uintptr_t start = reinterpret_cast<uintptr_t>(data);
  size_t high = g_high.load(std::memory_order_acquire);
  for (size_t i = 0; i < high; i++) {
    Slot& slot = g_slots[i];
    if (slot.start.load(std::memory_order_relaxed) != start) continue;
    // Wait out a repair in progress (a handler holds the slot kBusy for one mmap), then take the slot.
    uint32_t expected = kLive;
    while (!slot.state.compare_exchange_weak(expected, kBusy, std::memory_order_acq_rel)) {
      if (expected == kFree) break;
      expected = kLive;
      Pause();
    }
    if (expected == kFree || slot.start.load(std::memory_order_relaxed) != start) {
      if (expected != kFree) slot.state.store(kLive, std::memory_order_release);
      continue;
    }
    slot.start.store(0, std::memory_order_relaxed);
    slot.end.store(0, std::memory_order_relaxed);
    slot.state.store(kFree, std::memory_order_release);
    break;
  }
  munmap(data, length);
}

bool MappingFaulted(const void* data) {
  uintptr_t start = reinterpret_cast<uintptr_t>(data);
  size_t high = g_high.load(std::memory_order_acquire);
  for (size_t i = 0; i < high; i++) {
    Slot& slot = g_slots[i];
    if (slot.state.load(std::memory_order_acquire) != kFree && slot.start.load(std::memory_order_relaxed) == start) {
      return slot.faulted.load(std::memory_order_acquire) != 0;
    }
  }
  return false;
}

bool FaultMappingAt(const void* addr) { return RepairAt(reinterpret_cast<uintptr_t>(addr)); }

int32_t* FaultEpochWords() { return g_epoch; }

}  // namespace shmx
