// Per-environment state (main thread and each Worker load the addon separately).
#pragma once
#include <napi.h>

namespace shmx {

struct AddonData {
  Napi::FunctionReference message_queue;
  Napi::FunctionReference futex_waiter;
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace shmx
