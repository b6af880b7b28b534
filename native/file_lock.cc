// Instance locks: an exclusive flock(2) on a file. The kernel drops the lock when the last descriptor of the
// open file description closes — at the latest when its process dies, however it dies — and the file's
// directory decides who may create or open it (unlike an abstract socket name, which anyone may bind).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"
#include "unique_fd.h"

namespace shmx {
namespace {

// lockFile(path): opens (creating it 0600 if needed, never through a symbolic link) and locks `path`
// exclusively without blocking. Returns the descriptor, which holds the lock until it is closed. Throws
// EWOULDBLOCK while another open file description holds it, ENOTREGULAR for anything but a regular file,
// ENOTOWNER for a file of another user (other than root).
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return env.Undefined();
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600));
  if (!fd.Valid()) throw ErrnoError(env, errno, "open", path);
  struct stat st = {};
  if (fstat(fd.Get(), &st) != 0) throw ErrnoError(env, errno, "fstat", path);
  if (!S_ISREG(st.st_mode)) throw CodeError(env, "ENOTREGULAR", "open", path, "lock file is not a regular file");
  // Checked before locking: a file another user made (in a shared sticky directory) must not hold us back.
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    throw CodeError(env, "ENOTOWNER", "open", path, "lock file belongs to uid " + std::to_string(st.st_uid));
  }
  if (flock(fd.Get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno == EAGAIN ? EWOULDBLOCK : errno;
    throw ErrnoError(env, err, "flock", path);
  }
  return Napi::Number::New(env, fd.Release());
}

}  // namespace

void InitFileLocks(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
}

}  // namespace shmx
