// SharedArrayBuffers over memory the addon mapped (zero-copy), and reading one back.
#pragma once
#include <napi.h>

#include <cstddef>

namespace shmx {

// Wraps `length` bytes at `data` (an mmap'd region) in a SharedArrayBuffer. Ownership of the mapping passes
// to the buffer: it is munmap'ed when the last SharedArrayBuffer referring to it (in any thread) is collected.
// On failure the mapping is unmapped and a JS exception is pending (returns an empty value).
Napi::Value NewMappedSharedBuffer(Napi::Env env, void* data, size_t length);

// Wraps `length` bytes of memory that lives as long as the process (a static of the addon, which is linked
// -z nodelete): collecting the buffer leaves the memory alone.
Napi::Value NewStaticSharedBuffer(Napi::Env env, void* data, size_t length);

// Data pointer and length of a SharedArrayBuffer; false when `value` is not one.
bool SharedBufferData(napi_value value, void** data, size_t* length);

// "node-api" when the running node exports node_api_create_external_sharedarraybuffer, else "v8".
const char* SharedBufferBackend();

}  // namespace shmx
