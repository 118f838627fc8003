/* onnx_write.c - the atomic file writer of `nnrun export` / `nnrun import`:
 * the whole file goes to ".<name>.tmp.<pid>.XXXXXX" in the target's folder,
 * is fsync'd and closed, renamed over the target, and the folder fsync'd.
 * On any failure the temporary file is removed and the target is untouched. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.h"
#include "util.h"

int nn_write_atomic(const char *path, const void *buf, size_t len, nn_err *e)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!path[0] || !base[0] || !strcmp(base, ".") || !strcmp(base, ".."))
        return nn_fail(e, NN_EIO, "%s: cannot write: the path names a folder, not a file", path);
    int r = nn_check_output(path, NULL, e); /* only a new path or a regular file is replaced */
    if (r)
        return r;
    size_t dl = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(dl + 2), *tmp = malloc(strlen(path) + 48);
    if (!dir || !tmp) {
        free(dir);
        free(tmp);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    if (slash) {
        memcpy(dir, path, dl);
        dir[dl] = 0;
        if (!dl)
            strcpy(dir, "/");
    } else {
        strcpy(dir, ".");
    }
    sprintf(tmp, "%.*s.%s.tmp.%ld.XXXXXX", (int)(slash ? dl + 1 : 0), path, base, (long)getpid());
    mode_t um = umask(0);
    umask(um);
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : (0666 & ~um);
    int rc = 0, fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = nn_fail(e, NN_EIO, "%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
        tmp[0] = 0;
        goto done;
    }
    if (fchmod(fd, mode)) {
        rc = nn_fail(e, NN_EIO, "%s: cannot set permissions of %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    for (size_t off = 0; off < len;) {
        ssize_t k = write(fd, (const char *)buf + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = nn_fail(e, NN_EIO, "%s: writing %s failed: %s", path, tmp, k < 0 ? strerror(errno) : "no progress");
            goto done;
        }
        off += (size_t)k;
    }
    if (fsync(fd)) {
        rc = nn_fail(e, NN_EIO, "%s: syncing %s failed: %s", path, tmp, strerror(errno));
        goto done;
    }
    int cr = close(fd);
    fd = -1;
    if (cr) {
        rc = nn_fail(e, NN_EIO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path)) {
        rc = nn_fail(e, NN_EIO, "%s: cannot replace it with %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    tmp[0] = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) && errno != EINVAL && errno != ENOTSUP)
            rc = nn_fail(e, NN_EIO, "%s: written, but syncing its folder %s failed: %s", path, dir, strerror(errno));
        close(dfd);
    }
done:
    if (fd >= 0)
        close(fd);
    if (rc && tmp[0])
        unlink(tmp);
    free(dir);
    free(tmp);
    return rc;
}
