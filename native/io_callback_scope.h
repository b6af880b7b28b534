// Enters JavaScript from a libuv callback the way Node's own I/O callbacks do: in the async context of the
// object that owns the handle, with promise reactions and process.nextTick callbacks run when the scope closes.
// Napi::CallbackScope does the same but makes a new resource object per call (napi_create_object: a V8 runtime
// call, measurable on every doorbell wake-up); this one passes the owner's own JS object.
#pragma once
#include <napi.h>

namespace shmx {

class IoCallbackScope {
 public:
  // `owner`: the JS object whose handle fired (it must be alive: the caller holds it). Call inside a HandleScope.
  IoCallbackScope(Napi::Env env, Napi::Object owner, const Napi::AsyncContext& context) : env_(env) {
    napi_value resource = owner.IsEmpty() ? Napi::Object::New(env) : owner;
    if (napi_open_callback_scope(env, resource, context, &scope_) != napi_ok) scope_ = nullptr;
  }
  IoCallbackScope(const IoCallbackScope&) = delete;
  IoCallbackScope& operator=(const IoCallbackScope&) = delete;
  ~IoCallbackScope() {
    if (scope_ != nullptr) napi_close_callback_scope(env_, scope_);
  }

 private:
  napi_env env_;
  napi_callback_scope scope_ = nullptr;
};

}  // namespace shmx
