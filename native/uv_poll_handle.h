// RAII owner of a libuv poll handle. libuv frees nothing itself: a uv_poll_t must be stopped, closed with
// uv_close, and its memory released only in the close callback (the loop may still reference it until then).
// This class does that exactly once, on every path — an explicit Reset(), or the owner's destruction. Declare
// it *after* the descriptor it watches, so that it is closed before the descriptor is (members are destroyed in
// reverse order): epoll must stop watching an fd before the fd can be closed and its number reused.
#pragma once
#include <uv.h>

namespace shmx {

class UvPoll {
 public:
  UvPoll() = default;
  UvPoll(const UvPoll&) = delete;
  UvPoll& operator=(const UvPoll&) = delete;
  ~UvPoll() { Reset(); }

  // Makes a poll handle for `fd` on `loop` whose callbacks get `data` as handle->data. Returns 0, or a negative
  // libuv error (then there is nothing to undo).
  int Init(uv_loop_t* loop, int fd, void* data) {
    Reset();
    auto* handle = new uv_poll_t;
    if (int rc = uv_poll_init(loop, handle, fd); rc != 0) {
      delete handle;  // never initialised: uv_close is neither needed nor allowed
      return rc;
    }
    handle->data = data;
    handle_ = handle;
    return 0;
  }

  int Start(int events, uv_poll_cb callback) { return handle_ ? uv_poll_start(handle_, events, callback) : UV_EINVAL; }
  void Stop() {
    if (handle_) uv_poll_stop(handle_);
  }
  void Ref() {
    if (handle_) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
  }
  void Unref() {
    if (handle_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  }
  bool Valid() const { return handle_ != nullptr; }

  // Stops and closes the handle; its memory goes in the close callback. Idempotent.
  void Reset() {
    if (!handle_) return;
    uv_poll_stop(handle_);
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

 private:
  uv_poll_t* handle_ = nullptr;
};

}  // namespace shmx
