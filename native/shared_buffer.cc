// Two ways to give JavaScript a SharedArrayBuffer over an mmap'd region:
//  - Node-API's node_api_create_external_sharedarraybuffer (Node >= 26.1), probed at run time with dlsym so
//    the same binary works on older nodes;
//  - otherwise V8's SharedArrayBuffer::NewBackingStore with an munmap deleter.
// The deleter may run on any thread, after the Worker that made the buffer has exited; the addon is linked
// with -z nodelete so this code is still mapped then. It also takes the mapping out of the truncation registry
// (sigbus.h) before unmapping it.
#include "shared_buffer.h"

#include <dlfcn.h>
#include <sys/mman.h>

#include <cstring>

#include "sigbus.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <v8.h>
#pragma GCC diagnostic pop

namespace shmx {
namespace {

// Node-API values are V8 handle slots: node converts them with the same bit copy (v8impl in node's sources).
v8::Local<v8::Value> ToV8(napi_value value) {
  v8::Local<v8::Value> local;
  static_assert(sizeof(local) == sizeof(value));
  std::memcpy(static_cast<void*>(&local), &value, sizeof(value));
  return local;
}

napi_value FromV8(v8::Local<v8::Value> local) { return reinterpret_cast<napi_value>(*local); }

using CreateExternalSab = napi_status (*)(napi_env, void*, size_t, void (*)(void*, void*), void*, napi_value*);

CreateExternalSab ProbeNodeApi() {
  static CreateExternalSab fn =
      reinterpret_cast<CreateExternalSab>(dlsym(RTLD_DEFAULT, "node_api_create_external_sharedarraybuffer"));
  return fn;
}

struct Mapping {
  void* data;
  size_t length;
};

void UnmapFromNodeApi(void* /*data*/, void* hint) {
  auto* mapping = static_cast<Mapping*>(hint);
  ReleaseMapping(mapping->data, mapping->length);
  delete mapping;
}

void UnmapFromV8(void* data, size_t length, void* /*deleter_data*/) { ReleaseMapping(data, length); }

void KeepFromNodeApi(void* /*data*/, void* /*hint*/) {}
void KeepFromV8(void* /*data*/, size_t /*length*/, void* /*deleter_data*/) {}

// The buffer over `data`, which `owned` buffers unmap when collected and static ones leave alone.
Napi::Value NewSharedBuffer(Napi::Env env, void* data, size_t length, bool owned) {
  if (CreateExternalSab create = ProbeNodeApi()) {
    Mapping* mapping = owned ? new Mapping{data, length} : nullptr;
    napi_value result;
    if (create(env, data, length, owned ? UnmapFromNodeApi : KeepFromNodeApi, mapping, &result) != napi_ok) {
      if (owned) ReleaseMapping(data, length);
      delete mapping;
      Napi::Error::New(env, "node_api_create_external_sharedarraybuffer failed").ThrowAsJavaScriptException();
      return Napi::Value();
    }
    return Napi::Value(env, result);
  }
#ifdef V8_ENABLE_SANDBOX
  if (owned) ReleaseMapping(data, length);
  Napi::Error::New(env,
                   "this runtime runs V8 with its sandbox enabled, which refuses SharedArrayBuffers over "
                   "external memory, and it lacks node_api_create_external_sharedarraybuffer")
      .ThrowAsJavaScriptException();
  return Napi::Value();
#else
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store =
      v8::SharedArrayBuffer::NewBackingStore(data, length, owned ? UnmapFromV8 : KeepFromV8, nullptr);
  v8::Local<v8::SharedArrayBuffer> sab = v8::SharedArrayBuffer::New(isolate, std::move(store));
  return Napi::Value(env, FromV8(sab));
#endif
}

}  // namespace

const char* SharedBufferBackend() { return ProbeNodeApi() ? "node-api" : "v8"; }

Napi::Value NewMappedSharedBuffer(Napi::Env env, void* data, size_t length) {
  return NewSharedBuffer(env, data, length, true);
}

Napi::Value NewStaticSharedBuffer(Napi::Env env, void* data, size_t length) {
  return NewSharedBuffer(env, data, length, false);
}

bool SharedBufferData(napi_value value, void** data, size_t* length) {
  if (value == nullptr) return false;
  v8::Local<v8::Value> local = ToV8(value);
  if (local.IsEmpty() || !local->IsSharedArrayBuffer()) return false;
  v8::Local<v8::SharedArrayBuffer> sab = local.As<v8::SharedArrayBuffer>();
  *data = sab->Data();
  *length = sab->ByteLength();
  return true;
}

}  // namespace shmx
