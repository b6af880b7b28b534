// Event-loop doorbells between processes: a Unix datagram socket bound to a name in Linux's abstract
// namespace. The receiver polls it on the libuv loop (no thread hop, unlike a futex waited in a thread); a
// sender rings it by name, so no descriptor has to be passed between processes; and the kernel removes the
// name the moment its process dies, so there is nothing to sweep. A ring carries no data: it only says
// "look at shared memory now". Anyone may ring (abstract names have no permissions) — a stray ring costs one
// spurious look, never correctness.
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon_data.h"
#include "args.h"
#include "errors.h"
#include "modules.h"
#include "unique_fd.h"

namespace shmx {
namespace {

constexpr size_t kMaxAbstractName = sizeof(sockaddr_un::sun_path) - 1;

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
                       {InstanceMethod<&Doorbell::Close>("close"), InstanceMethod<&Doorbell::SetRef>("ref"),
                        InstanceMethod<&Doorbell::SetUnref>("unref"), InstanceAccessor<&Doorbell::Name>("name")});
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
    poll_ = new uv_poll_t;
    if (int rc = uv_poll_init(loop, poll_, fd.Get()); rc != 0) {
      delete poll_;
      poll_ = nullptr;
      throw ErrnoError(env, -rc, "uv_poll_init", name_);
    }
    poll_->data = this;
    fd_ = std::move(fd);
    on_ring_ = Napi::Persistent(info[1].As<Napi::Function>());
    async_context_ = std::make_unique<Napi::AsyncContext>(env, "shmx.Doorbell");
    uv_poll_start(poll_, UV_READABLE, OnReadable);
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));  // a doorbell alone does not keep the process alive
    Ref();  // alive while open: rings must find this object
  }

  ~Doorbell() override { Release(); }

 private:
  Napi::Value Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<Doorbell*>(handle->data);
    // Drain every pending ring: many rings before we ran are one look at shared memory.
    char scratch[16];
    while (recv(self->fd_.Get(), scratch, sizeof(scratch), 0) >= 0) {
    }
    if (status < 0) return;
    Napi::Env env = self->Env();
    Napi::HandleScope handles(env);
    Napi::CallbackScope scope(env, *self->async_context_);
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
    if (poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value SetUnref(const Napi::CallbackInfo& info) {
    if (poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  void Release() {
    if (poll_) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    fd_.Reset();
    on_ring_.Reset();
  }

  std::string name_;
  UniqueFd fd_;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference on_ring_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

// One unbound sending socket per environment, made on first ring.
int SenderSocket(Napi::Env env) {
  AddonData& data = Data(env);
  if (data.bell_sender < 0) {
    data.bell_sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (data.bell_sender < 0) throw ErrnoError(env, errno, "socket", "doorbell sender");
  }
  return data.bell_sender;
}

Napi::Value CreateDoorbell(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgBellName(info, 0, &name)) return env.Undefined();
  return Data(env).doorbell.New({info[0], info.Length() > 1 ? info[1] : env.Undefined()});
}

// ringDoorbell(name) → true when delivered (or one is already pending), false when nobody is bound to it.
Napi::Value Ring(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgBellName(info, 0, &name)) return env.Undefined();
  sockaddr_un addr;
  socklen_t len = AbstractAddress(name, &addr);
  char byte = 1;
  if (sendto(SenderSocket(env), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len) == 1) {
    return Napi::Boolean::New(env, true);
  }
  if (errno == EAGAIN) return Napi::Boolean::New(env, true);  // the receiver has rings queued already
  if (errno == ECONNREFUSED || errno == ENOENT) return Napi::Boolean::New(env, false);
  throw ErrnoError(env, errno, "sendto", name);
}

}  // namespace

void InitDoorbells(Napi::Env env, Napi::Object exports) {
  Data(env).doorbell = Napi::Persistent(Doorbell::Define(env));
  exports.Set("createDoorbell", Napi::Function::New(env, CreateDoorbell, "createDoorbell"));
  exports.Set("ringDoorbell", Napi::Function::New(env, Ring, "ringDoorbell"));
}

}  // namespace shmx
