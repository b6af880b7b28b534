// Argument checks run before any system call: a bad argument is a TypeError or RangeError, never a crash.
// Each returns false after scheduling the exception; callers return immediately.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace shmx {

// Largest segment or length accepted (1 TiB): anything larger is a mistake, not a request.
constexpr double kMaxBytes = 1099511627776.0;

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out);
// A POSIX object name without the leading slash: 1..250 bytes of [A-Za-z0-9._-], not "." or "..".
bool ArgName(const Napi::CallbackInfo& info, size_t i, std::string* out);
// A name prefix: like ArgName but may be empty.
bool ArgPrefix(const Napi::CallbackInfo& info, size_t i, std::string* out);
// An integer number in [min, max].
bool ArgInteger(const Napi::CallbackInfo& info, size_t i, const char* what, double min, double max, int64_t* out);
// Like ArgInteger, but an absent/undefined argument yields `fallback`.
bool ArgOptionalInteger(const Napi::CallbackInfo& info, size_t i, const char* what, double min, double max,
                        int64_t fallback, int64_t* out);
// A SharedArrayBuffer and a 4-byte aligned byte offset of an Int32 word inside it.
bool ArgSharedWord(const Napi::CallbackInfo& info, size_t buffer_index, size_t offset_index, int32_t** word);

// A number as JavaScript prints it, for error messages.
std::string FormatNumber(double v);

// Validates a name held in a string; `what` ("name", "prefix") starts the error message.
bool CheckName(Napi::Env env, const std::string& name, bool allow_empty, const char* what = "name");

}  // namespace shmx
