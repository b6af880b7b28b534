// Entry point of the shmx addon: one initializer per kernel-object family.
#include <napi.h>

#include "addon_data.h"
#include "modules.h"

namespace shmx {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InitSegments(env, exports);
  InitMessageQueues(env, exports);
  InitProcessFacts(env, exports);
  InitFutex(env, exports);
  InitDoorbells(env, exports);
  InitFileLocks(env, exports);
  return exports;
}

}  // namespace shmx

static Napi::Object InitShmx(Napi::Env env, Napi::Object exports) { return shmx::Init(env, exports); }

NODE_API_MODULE(shmx, InitShmx)
