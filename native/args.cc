#include "args.h"

#include <charconv>
#include <cmath>

#include "shared_buffer.h"

namespace shmx {

static bool TypeFail(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return false;
}

static bool RangeFail(Napi::Env env, const std::string& message) {
  Napi::RangeError::New(env, message).ThrowAsJavaScriptException();
  return false;
}

// A number as JavaScript prints it ("1.5", "NaN", "-Infinity", "4294967296"), for error messages.
std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char text[32];
  auto result = std::to_chars(text, text + sizeof(text), v);  // shortest form that reads back as `v`
  return std::string(text, result.ptr);
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    return TypeFail(info.Env(), std::string(what) + " must be a string");
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

bool CheckName(Napi::Env env, const std::string& name, bool allow_empty, const char* what) {
  const std::string w = what;
  if (name.empty() && !allow_empty) return RangeFail(env, w + " must not be empty");
  if (name.size() > 250) return RangeFail(env, w + " is longer than 250 bytes: '" + name.substr(0, 40) + "...'");
  if (name == "." || name == "..") return RangeFail(env, w + " must not be '.' or '..'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) {
      if (c == '/') return RangeFail(env, w + " must not contain '/': '" + name + "'");
      return RangeFail(env, w + " may hold only [A-Za-z0-9._-]: '" + name + "'");
    }
  }
  return true;
}

bool ArgName(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  return ArgString(info, i, "name", out) && CheckName(info.Env(), *out, false, "name");
}

bool ArgPrefix(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  return ArgString(info, i, "prefix", out) && CheckName(info.Env(), *out, true, "prefix");
}

bool ArgInteger(const Napi::CallbackInfo& info, size_t i, const char* what, double min, double max, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) return TypeFail(info.Env(), std::string(what) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::floor(v) != v) {
    return RangeFail(info.Env(), std::string(what) + " must be an integer, got " + FormatNumber(v));
  }
  if (v < min || v > max) {
    return RangeFail(info.Env(), std::string(what) + " must be in [" + FormatNumber(min) + ", " + FormatNumber(max) +
                                     "], got " + FormatNumber(v));
  }
  *out = static_cast<int64_t>(v);
  return true;
}

bool ArgOptionalInteger(const Napi::CallbackInfo& info, size_t i, const char* what, double min, double max,
                        int64_t fallback, int64_t* out) {
  if (info.Length() <= i || info[i].IsUndefined()) {
    *out = fallback;
    return true;
  }
  return ArgInteger(info, i, what, min, max, out);
}

bool ArgSharedWord(const Napi::CallbackInfo& info, size_t buffer_index, size_t offset_index, int32_t** word) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t length = 0;
  if (info.Length() <= buffer_index || !SharedBufferData(info[buffer_index], &data, &length)) {
    return TypeFail(env, "buffer must be a SharedArrayBuffer");
  }
  int64_t offset = 0;
  if (!ArgInteger(info, offset_index, "byteOffset", 0, kMaxBytes, &offset)) return false;
  if (offset % 4 != 0) return RangeFail(env, "byteOffset must be a multiple of 4, got " + std::to_string(offset));
  if (static_cast<uint64_t>(offset) + 4 > length) {
    return RangeFail(env, "byteOffset " + std::to_string(offset) + " is outside the buffer (" +
                              std::to_string(length) + " bytes)");
  }
  *word = reinterpret_cast<int32_t*>(static_cast<char*>(data) + offset);
  return true;
}

}  // namespace shmx
