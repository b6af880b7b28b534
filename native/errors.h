// Errors thrown into JavaScript: every failing system call becomes an Error carrying the errno name
// (`code`), the number (`errno`), the call (`syscall`) and the kernel object it concerned (`resource`).
#pragma once
#include <napi.h>
#include <string>

namespace shmx {

// Builds the Error for a failed system call; `hint` is appended to the message (e.g. which sysctl to raise).
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& resource,
                       const std::string& hint = "");

// Builds an Error with an shmx code (not an errno), e.g. ENOMQUEUEFS.
Napi::Error CodeError(Napi::Env env, const char* code, const char* syscall, const std::string& resource,
                      const std::string& message);

// The errno name ("ENOENT"), or "E<number>" when the C library does not know it.
std::string ErrnoName(int err);

}  // namespace shmx
