// Per-environment state (main thread and each Worker load the addon separately).
#pragma once
#include <napi.h>
#include <unistd.h>

namespace shmx {

struct AddonData {
  Napi::FunctionReference message_queue;
  Napi::FunctionReference futex_waiter;
  Napi::FunctionReference doorbell;
  int bell_sender = -1;  // unbound datagram socket used to ring doorbells
  ~AddonData() {
    if (bell_sender >= 0) close(bell_sender);
  }
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace shmx
