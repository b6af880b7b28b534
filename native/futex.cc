// Cross-process doorbells: the kernel futex on an Int32 word of a MAP_SHARED mapping. Atomics.wait/notify
// cannot do this (V8 keeps a process-local wait list), so waits and wakes go to the kernel here, without
// FUTEX_PRIVATE_FLAG. The asynchronous waiter parks a native thread in the kernel (no CPU while parked)
// and delivers the outcome to the event loop through a thread-safe function.
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "addon_data.h"
#include "args.h"
#include "errors.h"
#include "modules.h"
#include "sigbus.h"

namespace shmx {
namespace {

enum Outcome { kWoken, kNotEqual, kTimedOut, kCancelled };

const char* OutcomeName(int outcome) {
  switch (outcome) {
    case kWoken: return "ok";
    case kNotEqual: return "not-equal";
    case kTimedOut: return "timed-out";
    default: return "cancelled";
  }
}

timespec Now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

int64_t NanosSince(const timespec& start) {
  timespec now = Now();
  return (now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec);
}

// One futex wait, retried on EINTR with the remaining time. `stop` (optional) ends the wait as cancelled
// when set before a retry.
int WaitWord(int32_t* word, int32_t expected, int64_t timeout_ms, const std::atomic<bool>* stop) {
  timespec start = Now();
  for (;;) {
    if (stop && stop->load()) return kCancelled;
    timespec remaining;
    timespec* timeout = nullptr;
    if (timeout_ms >= 0) {
      int64_t left = timeout_ms * 1000000LL - NanosSince(start);
      if (left <= 0) return kTimedOut;
      remaining.tv_sec = left / 1000000000LL;
      remaining.tv_nsec = left % 1000000000LL;
      timeout = &remaining;
    }
    long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout, nullptr, 0);
    if (rc == 0) return (stop && stop->load()) ? kCancelled : kWoken;
    if (errno == EAGAIN) return kNotEqual;
    if (errno == ETIMEDOUT) return kTimedOut;
    if (errno == EFAULT) {
      // The word's segment was truncated: the kernel reports it here instead of raising SIGBUS. Fault the
      // mapping as the handler would (zero pages, epoch bumped) so the caller's re-check reads zeros safely.
      FaultMappingAt(word);
      return kWoken;
    }
    if (errno != EINTR) return kWoken;  // other errors cannot happen on a live mapping; callers re-check anyway
  }
}

int WakeWord(int32_t* word, int count) {
  long rc = syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
  if (rc < 0 && errno == EFAULT) FaultMappingAt(word);  // truncated under us, as in WaitWord
  return rc < 0 ? 0 : static_cast<int>(rc);
}

Napi::Value Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = nullptr;
  int64_t expected = 0, timeout = 0;
  if (!ArgSharedWord(info, 0, 1, &word) || !ArgInteger(info, 2, "expected", INT32_MIN, UINT32_MAX, &expected) ||
      !ArgInteger(info, 3, "timeoutMs", INT32_MIN, INT32_MAX, &timeout)) {
    return env.Undefined();
  }
  return Napi::String::New(env, OutcomeName(WaitWord(word, static_cast<int32_t>(expected), timeout, nullptr)));
}

Napi::Value Wake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = nullptr;
  int64_t count = 0;
  if (!ArgSharedWord(info, 0, 1, &word) || !ArgInteger(info, 2, "count", 1, INT_MAX, &count)) {
    return env.Undefined();
  }
  return Napi::Number::New(env, WakeWord(word, static_cast<int>(count)));
}

class FutexWaiter;
struct Delivery {
  uint64_t seq;
  int outcome;
};
// The thread-safe function's context. It lives until the thread-safe function is finalized, which can be
// after the waiter was collected (deliveries still queued then find `waiter` null) or, at environment
// teardown, before it (the finalizer then clears the waiter's `link_`). Both sides run on the JS thread.
struct Link {
  FutexWaiter* waiter;
};
void Deliver(Napi::Env env, Napi::Function, Link* link, Delivery* delivery);
using Tsfn = Napi::TypedThreadSafeFunction<Link, Delivery, Deliver>;

class FutexWaiter : public Napi::ObjectWrap<FutexWaiter> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FutexWaiter",
                       {InstanceMethod<&FutexWaiter::StartWait>("wait"), InstanceMethod<&FutexWaiter::Cancel>("cancel"),
                        InstanceMethod<&FutexWaiter::Close>("close"), InstanceAccessor<&FutexWaiter::Busy>("busy")});
  }

  explicit FutexWaiter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FutexWaiter>(info), env_(info.Env()) {
    if (!ArgSharedWord(info, 0, 1, &word_)) return;
    buffer_ = Napi::Persistent(info[0].As<Napi::Object>());  // the mapping must outlive any wait on it
    link_ = new Link{this};
    tsfn_ = Tsfn::New(info.Env(), "shmx.FutexWaiter", 0, 1, link_, [](Napi::Env, void*, Link* link) {
      if (link->waiter) link->waiter->link_ = nullptr;
      delete link;
    });
    tsfn_.Unref(info.Env());
    // Registered after the thread-safe function, so it runs before node tears that down when the environment
    // (a Worker, or the main thread at exit) ends: the thread is stopped before its delivery path goes away.
    if (napi_add_env_cleanup_hook(env_, OnEnvironmentTeardown, this) == napi_ok) cleanup_hook_ = true;
    thread_ = std::thread([this] { Run(); });
  }

  ~FutexWaiter() override {
    Shutdown();
    if (link_) link_->waiter = nullptr;  // deliveries still queued are dropped
    if (cleanup_hook_) napi_remove_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
  }

  // Called on the JS thread with the outcome of wait number `seq`.
  void Complete(Napi::Env env, uint64_t seq, int outcome) {
    if (!pending_ || seq != seq_) return;  // cancelled earlier: that promise is already settled
    Settle(env, outcome);
  }

 private:
  Napi::Value Busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), pending_.has_value()); }

  Napi::Value StartWait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t expected = 0, timeout = 0;
    if (!ArgInteger(info, 0, "expected", INT32_MIN, UINT32_MAX, &expected) ||
        !ArgInteger(info, 1, "timeoutMs", INT32_MIN, INT32_MAX, &timeout)) {
      return env.Undefined();
    }
    if (closed_) throw CodeError(env, "ECLOSED", "futex", "waiter", "futex waiter is closed");
    if (pending_) throw CodeError(env, "EBUSY", "futex", "waiter", "a wait is already pending on this waiter");
    pending_.emplace(Napi::Promise::Deferred::New(env));
    Napi::Promise promise = pending_->Promise();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seq_++;
      request_ = Request{seq_, static_cast<int32_t>(expected), timeout};
      stop_wait_.store(false);
    }
    cv_.notify_one();
    tsfn_.Ref(env);
    Ref();
    return promise;
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    if (!pending_) return Napi::Boolean::New(info.Env(), false);
    StopCurrentWait();
    Settle(info.Env(), kCancelled);
    return Napi::Boolean::New(info.Env(), true);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (pending_) Settle(info.Env(), kCancelled);
    Shutdown();
    return info.Env().Undefined();
  }

  void Settle(Napi::Env env, int outcome) {
    Napi::Promise::Deferred deferred = std::move(*pending_);
    pending_.reset();
    tsfn_.Unref(env);
    Unref();
    deferred.Resolve(Napi::String::New(env, OutcomeName(outcome)));
  }

  // Makes the thread leave its current futex wait (if any) and drop a request it has not started. The wake
  // goes to every waiter of the word (the kernel cannot aim at one thread); other waiters see a spurious
  // wake-up and re-check their word, as futex users must.
  void StopCurrentWait() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      request_.reset();
      stop_wait_.store(true);
    }
    for (int i = 0; i < 100000 && in_wait_.load(); i++) {
      WakeWord(word_, INT_MAX);
      sched_yield();
    }
  }

  // The environment is ending (Worker exit, process exit): no JavaScript runs any more.
  static void OnEnvironmentTeardown(void* data) {
    auto* self = static_cast<FutexWaiter*>(data);
    self->cleanup_hook_ = false;
    self->pending_.reset();  // its promise can never be observed now
    self->Shutdown();
  }

  // Stops and joins the thread, then releases the thread-safe function. Idempotent.
  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    cv_.notify_one();
    StopCurrentWait();
    if (thread_.joinable()) thread_.join();
    if (link_) tsfn_.Release();  // once joined, nothing calls it any more
    buffer_.Reset();
  }

  void Run() {
    for (;;) {
      Request request;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return quit_ || request_.has_value(); });
        if (quit_) return;
        request = *request_;
        request_.reset();
        in_wait_.store(true);
      }
      int outcome = WaitWord(word_, request.expected, request.timeout_ms, &stop_wait_);
      in_wait_.store(false);
      if (outcome != kCancelled) tsfn_.NonBlockingCall(new Delivery{request.seq, outcome});
    }
  }

  struct Request {
    uint64_t seq;
    int32_t expected;
    int64_t timeout_ms;
  };

  napi_env env_;
  int32_t* word_ = nullptr;
  Napi::ObjectReference buffer_;
  Link* link_ = nullptr;
  bool cleanup_hook_ = false;
  Tsfn tsfn_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<Request> request_;
  std::atomic<bool> stop_wait_{false};
  std::atomic<bool> in_wait_{false};
  bool quit_ = false;
  bool closed_ = false;
  uint64_t seq_ = 0;
  std::optional<Napi::Promise::Deferred> pending_;
};

void Deliver(Napi::Env env, Napi::Function, Link* link, Delivery* delivery) {
  if (env != nullptr && link != nullptr && link->waiter != nullptr) {
    link->waiter->Complete(env, delivery->seq, delivery->outcome);
  }
  delete delivery;
}

Napi::Value CreateWaiter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = nullptr;
  if (!ArgSharedWord(info, 0, 1, &word)) return env.Undefined();
  return Data(env).futex_waiter.New({info[0], info[1]});
}

}  // namespace

void InitFutex(Napi::Env env, Napi::Object exports) {
  Data(env).futex_waiter = Napi::Persistent(FutexWaiter::Define(env));
  exports.Set("futexWait", Napi::Function::New(env, Wait, "futexWait"));
  exports.Set("futexWake", Napi::Function::New(env, Wake, "futexWake"));
  exports.Set("createFutexWaiter", Napi::Function::New(env, CreateWaiter, "createFutexWaiter"));
}

}  // namespace shmx
