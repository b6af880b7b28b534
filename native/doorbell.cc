// Event-loop doorbells between the two sides of a session: a Unix datagram socket per side, bound to a random
// name in Linux's abstract namespace and then *connected* to the peer's. The receiver polls it on the libuv loop
// (no thread hop, unlike a futex waited in a thread), and the kernel removes the name the moment its process
// dies, so there is nothing to sweep. A ring carries no data: it only says "look at shared memory now".
//
// Why connected: abstract names have no permissions, and their names are listed in /proc/net/unix. A Unix
// datagram socket that is connected accepts datagrams from its peer only — the kernel refuses anyone else's
// sendto() with EPERM before anything is queued (unix_may_send), so a foreign flood costs the flooder, never
// us. And each side rings through its own connected socket, so EAGAIN has one meaning: *our* rings are already
// queued at the peer (its queue or our send buffer is full of them), so it will wake — no ring is ever lost to
// another session's backlog, as it could be with one shared sending socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon_data.h"
#include "args.h"
#include "errors.h"
#include "io_callback_scope.h"
#include "modules.h"
#include "unique_fd.h"
#include "uv_poll_handle.h"

namespace shmx {
namespace {

constexpr size_t kMaxAbstractName = sizeof(sockaddr_un::sun_path) - 1;
// Datagrams taken per wake-up in one recvmmsg: rings coalesce, so one look at shared memory answers them all.
constexpr unsigned kDrainBatch = 16;

socklen_t AbstractAddress(const std::string& name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  addr->sun_path[0] = '\0';
  std::memcpy(addr->sun_path + 1, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

bool ArgBellName(const Napi::CallbackInfo& info, size_t i, std::string* name) {
  if (!ArgName(info, i, name)) return false;
  if (name->size() > kMaxAbstractName) {
    Napi::RangeError::New(info.Env(), "doorbell name is longer than " + std::to_string(kMaxAbstractName) + " bytes")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

class Doorbell : public Napi::ObjectWrap<Doorbell> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Doorbell",
                       {InstanceMethod<&Doorbell::Connect>("connect"), InstanceMethod<&Doorbell::RingPeer>("ring"),
                        InstanceMethod<&Doorbell::Close>("close"), InstanceMethod<&Doorbell::SetRef>("ref"),
                        InstanceMethod<&Doorbell::SetUnref>("unref"), InstanceAccessor<&Doorbell::Name>("name"),
                        InstanceAccessor<&Doorbell::Counters>("counters")});
  }

  // new Doorbell(name, onRing)
  explicit Doorbell(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Doorbell>(info) {
    Napi::Env env = info.Env();
    if (!ArgBellName(info, 0, &name_)) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "onRing must be a function").ThrowAsJavaScriptException();
      return;
    }
    UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.Valid()) throw ErrnoError(env, errno, "socket", name_);
    sockaddr_un addr;
    socklen_t len = AbstractAddress(name_, &addr);
    if (bind(fd.Get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) throw ErrnoError(env, errno, "bind", name_);
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    if (int rc = poll_.Init(loop, fd.Get(), this); rc != 0) throw ErrnoError(env, -rc, "uv_poll_init", name_);
    fd_ = std::move(fd);
    on_ring_ = Napi::Persistent(info[1].As<Napi::Function>());
    async_context_ = std::make_unique<Napi::AsyncContext>(env, "shmx.Doorbell");
    poll_.Start(UV_READABLE, OnReadable);
    poll_.Unref();  // a doorbell alone does not keep the process alive
    Ref();          // alive while open: rings must find this object
  }

  ~Doorbell() override { Release(); }

 private:
  Napi::Value Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

  // {wakeups, datagrams, rings, connected}: how often onRing ran, how many datagrams were taken, how often we
  // rang the peer, whether we are connected.
  // Internal counters for tests and diagnostics (a flood that gets through would show in them).
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("wakeups", Napi::Number::New(info.Env(), static_cast<double>(wakeups_)));
    o.Set("datagrams", Napi::Number::New(info.Env(), static_cast<double>(datagrams_)));
    o.Set("rings", Napi::Number::New(info.Env(), static_cast<double>(rings_)));
    o.Set("connected", Napi::Boolean::New(info.Env(), connected_));
    return o;
  }

  // connect(peerName) → true: from now on only the peer's socket may ring us, and ring() rings it. Once only.
  // false: nobody is bound to that name any more (the peer closed or died meanwhile) — not an error of the
  // peer's; ring() then reports the peer gone.
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string peer;
    if (!ArgBellName(info, 0, &peer)) return env.Undefined();
    if (!fd_.Valid()) throw CodeError(env, "ECLOSED", "connect", name_, "doorbell '" + name_ + "' is closed");
    if (connected_) throw CodeError(env, "EISCONN", "connect", name_, "doorbell '" + name_ + "' is already connected");
    sockaddr_un addr;
    socklen_t len = AbstractAddress(peer, &addr);
    if (connect(fd_.Get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      if (errno == ECONNREFUSED || errno == ENOENT) return Napi::Boolean::New(env, false);
      // EPERM: that socket is connected to someone else already — not our peer's fresh doorbell.
      throw ErrnoError(env, errno, "connect", peer);
    }
    connected_ = true;
    return Napi::Boolean::New(env, true);
  }

  // ring() → true when delivered or our earlier rings are still pending there; false when the peer is gone
  // (or was gone when we tried to connect).
  Napi::Value RingPeer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!connected_ || !fd_.Valid()) return Napi::Boolean::New(env, false);  // no peer (any more)
    char byte = 1;
    rings_++;
    if (send(fd_.Get(), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) return Napi::Boolean::New(env, true);
    // EAGAIN: the peer's queue (or our send buffer) is full — of our own rings, since nobody else can send to
    // it: it will wake.
    if (errno == EAGAIN) return Napi::Boolean::New(env, true);
    if (errno == ECONNREFUSED || errno == ENOENT || errno == ENOTCONN) return Napi::Boolean::New(env, false);
    throw ErrnoError(env, errno, "send", name_);
  }

  // Takes every pending datagram, kDrainBatch per system call. Returns how many.
  size_t Drain() {
    char scratch[kDrainBatch];
    iovec iov[kDrainBatch];
    mmsghdr msgs[kDrainBatch];
    std::memset(msgs, 0, sizeof(msgs));
    for (unsigned i = 0; i < kDrainBatch; i++) {
      iov[i] = {&scratch[i], 1};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    size_t taken = 0;
    for (;;) {
      int n = recvmmsg(fd_.Get(), msgs, kDrainBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) break;
      taken += static_cast<size_t>(n);
      if (static_cast<unsigned>(n) < kDrainBatch) break;  // the queue is empty: no need to ask again
    }
    return taken;
  }

  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<Doorbell*>(handle->data);
    // Many rings before we ran are one look at shared memory.
    size_t taken = self->Drain();
    if (status < 0 || taken == 0) return;  // a spurious readiness: nothing to look at
    self->datagrams_ += taken;
    self->wakeups_++;
    Napi::Env env = self->Env();
    Napi::HandleScope handles(env);
    IoCallbackScope scope(env, self->Value(), *self->async_context_);
    self->on_ring_.Call({});
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_.Valid()) {
      Release();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    poll_.Ref();
    return info.Env().Undefined();
  }

  Napi::Value SetUnref(const Napi::CallbackInfo& info) {
    poll_.Unref();
    return info.Env().Undefined();
  }

  void Release() {
    poll_.Reset();  // before the descriptor: epoll must let go of it first
    fd_.Reset();
    connected_ = false;
    on_ring_.Reset();
  }

  std::string name_;
  UniqueFd fd_;
  UvPoll poll_;  // after fd_: destroyed (closed) first
  bool connected_ = false;
  uint64_t wakeups_ = 0;
  uint64_t datagrams_ = 0;
  uint64_t rings_ = 0;
  Napi::FunctionReference on_ring_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

Napi::Value CreateDoorbell(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgBellName(info, 0, &name)) return env.Undefined();
  return Data(env).doorbell.New({info[0], info.Length() > 1 ? info[1] : env.Undefined()});
}

}  // namespace

void InitDoorbells(Napi::Env env, Napi::Object exports) {
  Data(env).doorbell = Napi::Persistent(Doorbell::Define(env));
  exports.Set("createDoorbell", Napi::Function::New(env, CreateDoorbell, "createDoorbell"));
}

}  // namespace shmx
