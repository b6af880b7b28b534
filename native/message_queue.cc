// POSIX message queues. Descriptors are opened O_NONBLOCK; waiting for a message — or for room — happens on the
// event loop (Linux MQ descriptors are pollable: readable while a message waits, writable while there is room),
// so no thread ever blocks in mq_receive or mq_send.
#include <fcntl.h>
#include <mqueue.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <uv.h>

#include <cerrno>
#include <deque>
#include <fstream>
#include <string>

#include "addon_data.h"
#include "args.h"
#include "errors.h"
#include "io_callback_scope.h"
#include "modules.h"
#include "uv_poll_handle.h"

namespace shmx {
namespace {

constexpr long kMqueueMagic = 0x19800202;  // statfs f_type of the mqueue filesystem
constexpr int64_t kHardMaxMessages = 65536;  // HARD_MSGMAX in the kernel
constexpr int64_t kHardMaxMessageSize = 16 << 20;  // HARD_MSGSIZEMAX
// Interest bits of watch() (src/native.ts: MQ_READABLE, MQ_WRITABLE).
constexpr int kWatchReadable = 1;
constexpr int kWatchWritable = 2;

std::string ReadSysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  in >> value;
  return value.empty() ? "?" : value;
}

std::string RlimitText(int resource) {
  struct rlimit lim;
  if (getrlimit(resource, &lim) != 0) return "?";
  return lim.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(lim.rlim_cur);
}

// Which limit an mq_open failure hit, and how to raise it.
std::string LimitHint(int err, bool creating) {
  switch (err) {
    case EMFILE:
      return "Either the descriptor limit RLIMIT_NOFILE (ulimit -n, now " + RlimitText(RLIMIT_NOFILE) +
             ") or the per-user queue memory limit RLIMIT_MSGQUEUE (ulimit -q, now " +
             RlimitText(RLIMIT_MSGQUEUE) + " bytes) is exhausted; raise it or use fewer/smaller queues";
    case ENFILE:
      return "The system-wide open-file limit (fs.file-max) is exhausted";
    case ENOSPC:
      return "The system-wide queue count limit fs.mqueue.queues_max (now " +
             ReadSysctl("/proc/sys/fs/mqueue/queues_max") + ") is reached; raise it with sysctl";
    case EINVAL:
      if (!creating) return "";
      return "maxMessages must be <= fs.mqueue.msg_max (now " + ReadSysctl("/proc/sys/fs/mqueue/msg_max") +
             ") and messageSize <= fs.mqueue.msgsize_max (now " + ReadSysctl("/proc/sys/fs/mqueue/msgsize_max") +
             ") unless the process has CAP_SYS_RESOURCE; raise them with sysctl";
    default:
      return "";
  }
}

// Bytes of a TypedArray or DataView (over an ArrayBuffer or a SharedArrayBuffer), without copying.
bool ArgBytes(const Napi::CallbackInfo& info, size_t i, const char** data, size_t* length) {
  napi_env env = info.Env();
  void* ptr = nullptr;
  if (info.Length() > i && info[i].IsTypedArray()) {
    napi_typedarray_type type;
    size_t count = 0, offset = 0;
    napi_value buffer;
    if (napi_get_typedarray_info(env, info[i], &type, &count, &ptr, &buffer, &offset) == napi_ok) {
      *data = static_cast<const char*>(ptr);  // already adjusted by the view's byte offset
      *length = info[i].As<Napi::TypedArray>().ByteLength();
      return true;
    }
  } else if (info.Length() > i && info[i].IsDataView()) {
    size_t byte_length = 0, offset = 0;
    napi_value buffer;
    if (napi_get_dataview_info(env, info[i], &byte_length, &ptr, &buffer, &offset) == napi_ok) {
      *data = static_cast<const char*>(ptr);
      *length = byte_length;
      return true;
    }
  }
  Napi::TypeError::New(info.Env(), "data must be a TypedArray or DataView").ThrowAsJavaScriptException();
  return false;
}

class MessageQueue : public Napi::ObjectWrap<MessageQueue> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "MessageQueue",
                       {InstanceMethod<&MessageQueue::Send>("send"),
                        InstanceMethod<&MessageQueue::Receive>("receive"),
                        InstanceMethod<&MessageQueue::ReceiveInto>("receiveInto"),
                        InstanceMethod<&MessageQueue::ReceiveAsync>("receiveAsync"),
                        InstanceMethod<&MessageQueue::Watch>("watch"),
                        InstanceMethod<&MessageQueue::Attributes>("attributes"),
                        InstanceMethod<&MessageQueue::Close>("close"),
                        InstanceAccessor<&MessageQueue::Name>("name"), InstanceAccessor<&MessageQueue::Fd>("fd")});
  }

  // new MessageQueue(name, options): opens the queue. Only mqOpen calls this.
  explicit MessageQueue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MessageQueue>(info) {
    Napi::Env env = info.Env();
    if (!ArgName(info, 0, &name_)) return;
    bool create = false, exclusive = true;
    int64_t max_messages = 10, message_size = 8192, mode = 0600;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) {
        Napi::TypeError::New(env, "options must be an object").ThrowAsJavaScriptException();
        return;
      }
      Napi::Object o = info[1].As<Napi::Object>();
      if (!OptionBool(o, "create", &create) || !OptionBool(o, "exclusive", &exclusive) ||
          !OptionInt(o, "maxMessages", 1, kHardMaxMessages, &max_messages) ||
          !OptionInt(o, "messageSize", 1, kHardMaxMessageSize, &message_size) ||
          !OptionInt(o, "mode", 0, 0777, &mode)) {
        return;
      }
    }
    int flags = O_RDWR | O_NONBLOCK | O_CLOEXEC;
    struct mq_attr attr = {};
    attr.mq_maxmsg = max_messages;
    attr.mq_msgsize = message_size;
    if (create) flags |= O_CREAT | (exclusive ? O_EXCL : 0);
    std::string path = "/" + name_;
    mqd_ = mq_open(path.c_str(), flags, static_cast<mode_t>(mode), create ? &attr : nullptr);
    if (mqd_ == static_cast<mqd_t>(-1)) {
      int err = errno;
      throw ErrnoError(env, err, "mq_open", name_, LimitHint(err, create));
    }
    // mq_open applies the umask; a queue this call created (O_EXCL) gets exactly the mode asked for, as
    // segments do. A queue opened without O_EXCL may be someone else's: its mode is left alone.
    if (create && exclusive && fchmod(mqd_, static_cast<mode_t>(mode)) != 0) {
      int err = errno;
      CloseDescriptor();
      mq_unlink(path.c_str());
      throw ErrnoError(env, err, "fchmod", name_);
    }
    struct mq_attr actual;
    if (mq_getattr(mqd_, &actual) != 0) {
      int err = errno;
      CloseDescriptor();
      throw ErrnoError(env, err, "mq_getattr", name_);
    }
    message_size_ = actual.mq_msgsize;
  }

  ~MessageQueue() override { CloseDescriptor(); }

 private:
  bool OptionBool(Napi::Object o, const char* key, bool* out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    if (!v.IsBoolean()) {
      Napi::TypeError::New(Env(), std::string("options.") + key + " must be a boolean").ThrowAsJavaScriptException();
      return false;
    }
    *out = v.As<Napi::Boolean>().Value();
    return true;
  }

  bool OptionInt(Napi::Object o, const char* key, int64_t min, int64_t max, int64_t* out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    std::string what = std::string("options.") + key;
    if (!v.IsNumber()) {
      Napi::TypeError::New(Env(), what + " must be a number").ThrowAsJavaScriptException();
      return false;
    }
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<int64_t>(d))) {
      Napi::RangeError::New(Env(), what + " must be an integer in [" + std::to_string(min) + ", " +
                                       std::to_string(max) + "], got " + FormatNumber(d))
          .ThrowAsJavaScriptException();
      return false;
    }
    *out = static_cast<int64_t>(d);
    return true;
  }

  bool CheckOpen() {
    if (mqd_ != static_cast<mqd_t>(-1)) return true;
    CodeError(Env(), "ECLOSED", "mq", name_, "message queue '" + name_ + "' is closed").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<int>(mqd_)); }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* data = nullptr;
    size_t length = 0;
    int64_t priority = 0;
    if (!ArgBytes(info, 0, &data, &length) ||
        !ArgOptionalInteger(info, 1, "priority", 0, 32767, 0, &priority) || !CheckOpen()) {
      return env.Undefined();
    }
    if (static_cast<long>(length) > message_size_) {
      Napi::RangeError::New(env, "message of " + std::to_string(length) + " bytes exceeds the queue's messageSize " +
                                     std::to_string(message_size_))
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (mq_send(mqd_, data, length, static_cast<unsigned>(priority)) == 0) return Napi::Boolean::New(env, true);
    if (errno == EAGAIN) return Napi::Boolean::New(env, false);
    throw ErrnoError(env, errno, "mq_send", name_);
  }

  // One non-blocking mq_receive: the message, or an empty value on EAGAIN. Throws on other errors.
  Napi::Value TryReceive(Napi::Env env) {
    if (buffer_.size() < static_cast<size_t>(message_size_)) buffer_.resize(message_size_);
    ssize_t n = mq_receive(mqd_, buffer_.data(), buffer_.size(), nullptr);
    if (n >= 0) return Napi::Buffer<char>::Copy(env, buffer_.data(), static_cast<size_t>(n));
    if (errno == EAGAIN) return Napi::Value();
    throw ErrnoError(env, errno, "mq_receive", name_);
  }

  Napi::Value Receive(const Napi::CallbackInfo& info) {
    if (!CheckOpen()) return info.Env().Undefined();
    Napi::Value message = TryReceive(info.Env());
    return message.IsEmpty() ? info.Env().Null() : message;
  }

  // receiveInto(target): one non-blocking mq_receive straight into `target` (a Uint8Array of at least the
  // queue's messageSize — the kernel refuses smaller buffers): the message's length, or -1 when the queue is
  // empty. No allocation per message: the caller reuses its buffer.
  Napi::Value ReceiveInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(env, "target must be a Uint8Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!CheckOpen()) return env.Undefined();
    Napi::Uint8Array target = info[0].As<Napi::Uint8Array>();
    if (target.ByteLength() < static_cast<size_t>(message_size_)) {
      Napi::RangeError::New(env, "target of " + std::to_string(target.ByteLength()) +
                                     " bytes is smaller than the queue's messageSize " + std::to_string(message_size_))
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ssize_t n = mq_receive(mqd_, reinterpret_cast<char*>(target.Data()), target.ByteLength(), nullptr);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EAGAIN) return Napi::Number::New(env, -1);
    throw ErrnoError(env, errno, "mq_receive", name_);
  }

  Napi::Value ReceiveAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen()) return env.Undefined();
    auto deferred = Napi::Promise::Deferred::New(env);
    Napi::Promise promise = deferred.Promise();
    if (pending_.empty()) {
      Napi::Value message = TryReceive(env);
      if (!message.IsEmpty()) {
        deferred.Resolve(message);
        return promise;
      }
    }
    pending_.push_back(std::move(deferred));
    UpdatePolling(env);
    return promise;
  }

  // watch(events, onReady?): while `events` (readable 1, writable 2) is not 0, onReady(ready) runs from the event
  // loop whenever the queue is ready for one of them — level-triggered: again on every loop turn until the
  // caller reads (or writes) or stops watching. The poll stays registered across calls that keep the same
  // interest, so a steady watcher costs no epoll_ctl per message. It does not keep the process alive by itself.
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t events = 0;
    if (!ArgOptionalInteger(info, 0, "events", 0, kWatchReadable | kWatchWritable, 0, &events) || !CheckOpen()) {
      return env.Undefined();
    }
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsFunction()) {
        Napi::TypeError::New(env, "onReady must be a function").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      on_ready_ = Napi::Persistent(info[1].As<Napi::Function>());
    }
    if (events != 0 && on_ready_.IsEmpty()) {
      Napi::TypeError::New(env, "watch needs an onReady function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    watch_events_ = static_cast<int>(events);
    UpdatePolling(env);
    return env.Undefined();
  }

  // Polls for what pending receiveAsync calls and the watcher need, changing the registration only when that
  // changed (uv_poll_start re-registers the descriptor: two system calls).
  void UpdatePolling(Napi::Env env) {
    int events = (pending_.empty() ? 0 : UV_READABLE) | ((watch_events_ & kWatchReadable) ? UV_READABLE : 0) |
                 ((watch_events_ & kWatchWritable) ? UV_WRITABLE : 0);
    if (events == 0) {
      StopPolling();
      return;
    }
    if (!poll_.Valid()) {
      uv_loop_t* loop = nullptr;
      napi_get_uv_event_loop(env, &loop);
      if (poll_.Init(loop, static_cast<int>(mqd_), this) != 0) {
        throw CodeError(env, "EPOLL", "uv_poll_init", name_, "cannot poll message queue '" + name_ + "'");
      }
      async_context_ = std::make_unique<Napi::AsyncContext>(env, "shmx.MessageQueue.poll");
    }
    if (events != polled_events_) {
      if (int rc = poll_.Start(events, OnReady); rc != 0) throw ErrnoError(env, -rc, "uv_poll_start", name_);
      polled_events_ = events;
    }
    if (!polling_) {
      polling_ = true;
      Ref();  // the wrapper must outlive the poll
    }
    // A pending receiveAsync keeps the process alive, as a pending read does; a watcher alone does not.
    if (pending_.empty()) {
      poll_.Unref();
    } else {
      poll_.Ref();
    }
  }

  void StopPolling() {
    if (!polling_) return;
    poll_.Stop();
    polling_ = false;
    polled_events_ = 0;
    Unref();
  }

  static void OnReady(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<MessageQueue*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope handles(env);
    // A callback scope makes promise reactions run when we return, as for any other I/O callback.
    IoCallbackScope scope(env, self->Value(), *self->async_context_);
    self->Ref();  // the watcher may drop its last reference to us (close, GC) while it runs
    if (status < 0) {
      Napi::Error error = ErrnoError(env, -status, "uv_poll", self->name_);
      self->RejectAll(error);
      self->watch_events_ = 0;
      self->CallWatcher(env, 0, error.Value());
    } else {
      if ((events & UV_READABLE) != 0) self->ResolvePending(env);
      int ready = ((events & UV_READABLE) ? kWatchReadable : 0) | ((events & UV_WRITABLE) ? kWatchWritable : 0);
      ready &= self->watch_events_;
      if (ready != 0) self->CallWatcher(env, ready, env.Undefined());
    }
    if (self->mqd_ != static_cast<mqd_t>(-1)) {
      try {
        self->UpdatePolling(env);
      } catch (const Napi::Error& e) {
        self->RejectAll(e);
        napi_fatal_exception(env, e.Value());
      }
    }
    self->Unref();
  }

  void ResolvePending(Napi::Env env) {
    try {
      while (!pending_.empty()) {
        Napi::Value message = TryReceive(env);
        if (message.IsEmpty()) break;  // another reader won the race: keep polling
        Napi::Promise::Deferred deferred = std::move(pending_.front());
        pending_.pop_front();
        deferred.Resolve(message);
      }
    } catch (const Napi::Error& e) {
      RejectAll(e);
    }
  }

  // Runs onReady(ready, error); what it throws is an uncaught exception, as from any event-loop callback.
  void CallWatcher(Napi::Env env, int ready, Napi::Value error) {
    if (on_ready_.IsEmpty()) return;
    try {
      on_ready_.Call({Napi::Number::New(env, ready), error});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  void RejectAll(const Napi::Error& error) {
    std::deque<Napi::Promise::Deferred> pending;
    pending.swap(pending_);
    for (auto& d : pending) d.Reject(error.Value());
  }

  Napi::Value Attributes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen()) return env.Undefined();
    struct mq_attr attr;
    if (mq_getattr(mqd_, &attr) != 0) throw ErrnoError(env, errno, "mq_getattr", name_);
    Napi::Object out = Napi::Object::New(env);
    out.Set("maxMessages", Napi::Number::New(env, attr.mq_maxmsg));
    out.Set("messageSize", Napi::Number::New(env, attr.mq_msgsize));
    out.Set("currentMessages", Napi::Number::New(env, attr.mq_curmsgs));
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (mqd_ == static_cast<mqd_t>(-1)) return env.Undefined();
    if (!pending_.empty()) {
      RejectAll(CodeError(env, "ECLOSED", "mq_close", name_, "message queue '" + name_ + "' was closed"));
    }
    watch_events_ = 0;
    on_ready_.Reset();
    StopPolling();
    CloseDescriptor();
    return env.Undefined();
  }

  // Releases the poll handle and the descriptor; safe from the finalizer (nothing polls then: polling holds a
  // reference to this wrapper).
  void CloseDescriptor() {
    poll_.Reset();  // before the descriptor: epoll must let go of it first
    polling_ = false;
    polled_events_ = 0;
    if (mqd_ != static_cast<mqd_t>(-1)) {
      mq_close(mqd_);
      mqd_ = static_cast<mqd_t>(-1);
    }
  }

  std::string name_;
  mqd_t mqd_ = static_cast<mqd_t>(-1);
  long message_size_ = 0;
  std::string buffer_;
  UvPoll poll_;  // after mqd_: destroyed (closed) first
  bool polling_ = false;
  int polled_events_ = 0;  // UV_READABLE / UV_WRITABLE the poll is registered for
  int watch_events_ = 0;   // kWatchReadable / kWatchWritable asked for by watch()
  Napi::FunctionReference on_ready_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  std::deque<Napi::Promise::Deferred> pending_;
};

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgName(info, 0, &name)) return env.Undefined();
  Napi::Value options = info.Length() > 1 ? info[1] : env.Undefined();
  return Data(env).message_queue.New({info[0], options});
}

Napi::Value Unlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgName(info, 0, &name)) return env.Undefined();
  if (mq_unlink(("/" + name).c_str()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  throw ErrnoError(env, errno, "mq_unlink", name);
}

Napi::Value List(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string prefix;
  if (!ArgPrefix(info, 0, &prefix)) return env.Undefined();
  struct statfs fs;
  if (statfs("/dev/mqueue", &fs) != 0 || fs.f_type != kMqueueMagic) {
    throw CodeError(env, "ENOMQUEUEFS", "statfs", "/dev/mqueue",
                    "/dev/mqueue is not mounted, so queues cannot be listed (queues still work); as root: "
                    "mount -t mqueue none /dev/mqueue");
  }
  return ToArray(env, ListDirectory(env, "/dev/mqueue", prefix));
}

}  // namespace

void InitMessageQueues(Napi::Env env, Napi::Object exports) {
  Data(env).message_queue = Napi::Persistent(MessageQueue::Define(env));
  exports.Set("mqOpen", Napi::Function::New(env, Open, "mqOpen"));
  exports.Set("mqUnlink", Napi::Function::New(env, Unlink, "mqUnlink"));
  exports.Set("mqList", Napi::Function::New(env, List, "mqList"));
}

}  // namespace shmx
