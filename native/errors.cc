#include "errors.h"

#include <cstring>

namespace shmx {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name) return name;
  std::string fallback = "E";
  fallback += std::to_string(err);
  return fallback;
}

static Napi::Error Decorate(Napi::Error error, const std::string& code, int err, const char* syscall,
                            const std::string& resource) {
  Napi::Object obj = error.Value();
  Napi::Env env = obj.Env();
  obj.Set("code", Napi::String::New(env, code));
  obj.Set("errno", Napi::Number::New(env, err));
  obj.Set("syscall", Napi::String::New(env, syscall));
  obj.Set("resource", Napi::String::New(env, resource));
  return error;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& resource,
                       const std::string& hint) {
  std::string code = ErrnoName(err);
  std::string message = std::string(syscall) + " '" + resource + "': " + std::strerror(err) + " (" + code + ")";
  if (!hint.empty()) message += ". " + hint;
  return Decorate(Napi::Error::New(env, message), code, err, syscall, resource);
}

Napi::Error CodeError(Napi::Env env, const char* code, const char* syscall, const std::string& resource,
                      const std::string& message) {
  return Decorate(Napi::Error::New(env, message + " (" + code + ")"), code, 0, syscall, resource);
}

}  // namespace shmx
