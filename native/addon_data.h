// Per-environment state (main thread and each Worker load the addon separately).
#pragma once
#include <napi.h>
#include <unistd.h>

namespace shmx {

struct AddonData {
  Napi::FunctionReference message_queue;
  Napi::FunctionReference futex_waiter;
  Napi::FunctionReference doorbell;
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace shmx
