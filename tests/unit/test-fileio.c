/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fileio.c: the atomic file writer (mode, owner, replace or not, nothing left behind, never
 * through a symlink) and loop_write(). */

#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "fileio.h"

typedef struct Fixture {
        char *dir;
        mode_t old_umask;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data) {
        f->dir = g_dir_make_tmp("test-fileio-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        /* The daemon's umask: the writer must set the mode itself. */
        f->old_umask = umask(077);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        umask(f->old_umask);
        g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(f->dir, name, NULL);
                g_assert_cmpint(g_unlink(p), ==, 0);
        }
        g_assert_cmpint(g_rmdir(f->dir), ==, 0);
        g_free(f->dir);
}

static gint cmp_names(gconstpointer a, gconstpointer b) {
        return g_strcmp0(*(char *const *) a, *(char *const *) b);
}

/* The names in the directory, sorted, joined by spaces. */
static char *listing(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;
        while ((name = g_dir_read_name(d)))
                g_ptr_array_add(names, g_strdup(name));
        g_ptr_array_sort(names, cmp_names);
        g_ptr_array_add(names, NULL);
        return g_strjoinv(" ", (char **) names->pdata);
}

static char *contents(const char *path) {
        char *data = NULL;
        g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
        return data;
}

static void test_create(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->dir, "ca.pem", NULL);
        struct stat st;

        g_assert_cmpint(write_file_atomic(path, "hello\n", 6, 0644), ==, 0);
        g_assert_cmpint(lstat(path, &st), ==, 0);
        g_assert_true(S_ISREG(st.st_mode));
        g_assert_cmpint(st.st_mode & 07777, ==, 0644); /* not 0600, whatever the umask */
        g_autofree char *c = contents(path);
        g_assert_cmpstr(c, ==, "hello\n");
        g_autofree char *l = listing(f->dir);
        g_assert_cmpstr(l, ==, "ca.pem");

        /* An empty file is a file too. */
        g_autofree char *empty = g_build_filename(f->dir, "empty", NULL);
        g_assert_cmpint(write_file_atomic(empty, "", 0, 0600), ==, 0);
        g_assert_cmpint(stat(empty, &st), ==, 0);
        g_assert_cmpint(st.st_size, ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);
}

static void test_replace(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->dir, "crl.pem", NULL);
        struct stat before, after;

        g_assert_cmpint(write_file_atomic(path, "old", 3, 0644), ==, 0);
        g_assert_cmpint(stat(path, &before), ==, 0);
        /* A reader that opened the old file keeps reading the old file. */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);

        g_assert_cmpint(write_file_atomic(path, "new content", 11, 0640), ==, 0);
        g_assert_cmpint(stat(path, &after), ==, 0);
        g_assert_cmpuint(before.st_ino, !=, after.st_ino);
        g_assert_cmpint(after.st_mode & 07777, ==, 0640);
        g_autofree char *c = contents(path);
        g_assert_cmpstr(c, ==, "new content");

        char buf[16] = {0};
        g_assert_cmpint(read(fd, buf, sizeof buf - 1), ==, 3);
        g_assert_cmpstr(buf, ==, "old");
        close(fd);

        g_autofree char *l = listing(f->dir);
        g_assert_cmpstr(l, ==, "crl.pem");
}

static void test_noreplace(Fixture *f, gconstpointer data) {
        _cleanup_close_ int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(dfd, >=, 0);

        g_assert_cmpint(write_file_atomic_at(dfd, "master.key", "first", 5, 0600, (uid_t) -1, (gid_t) -1,
                                             ATOMIC_FILE_NOREPLACE),
                        ==, 0);
        /* The second writer loses the race and says so; the first file stays as it was. */
        g_assert_cmpint(write_file_atomic_at(dfd, "master.key", "second", 6, 0600, (uid_t) -1, (gid_t) -1,
                                             ATOMIC_FILE_NOREPLACE),
                        ==, -EEXIST);
        g_autofree char *path = g_build_filename(f->dir, "master.key", NULL);
        g_autofree char *c = contents(path);
        g_assert_cmpstr(c, ==, "first");
        g_autofree char *l = listing(f->dir);
        g_assert_cmpstr(l, ==, "master.key");
}

static void test_symlink(Fixture *f, gconstpointer data) {
        g_autofree char *target = g_build_filename(f->dir, "target", NULL);
        g_autofree char *link = g_build_filename(f->dir, "link", NULL);

        g_assert_true(g_file_set_contents(target, "precious", -1, NULL));
        g_assert_cmpint(symlink("target", link), ==, 0);

        /* The name is replaced; what a symlink there pointed to is never written through it. */
        g_assert_cmpint(write_file_atomic(link, "mine", 4, 0644), ==, 0);
        struct stat st;
        g_assert_cmpint(lstat(link, &st), ==, 0);
        g_assert_true(S_ISREG(st.st_mode));
        g_autofree char *c = contents(target);
        g_assert_cmpstr(c, ==, "precious");
        g_autofree char *l = listing(f->dir);
        g_assert_cmpstr(l, ==, "link target");
}

static void test_stream(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->dir, "certkeeper.prom", NULL);
        _cleanup_(atomic_file_discard) AtomicFile a = ATOMIC_FILE_NULL;

        g_assert_cmpint(atomic_file_open(path, 0644, 0, &a), ==, 0);
        g_assert_cmpint(a.fd, >=, 0);
        for (unsigned i = 0; i < 1000; i++) {
                char line[32];
                int n = snprintf(line, sizeof line, "line %u\n", i);
                g_assert_cmpint(loop_write(a.fd, line, (size_t) n), ==, 0);
        }
        /* Not there before the commit: only the temporary file is. */
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        g_autofree char *l1 = listing(f->dir);
        g_assert_true(g_str_has_prefix(l1, ".#certkeeper.prom."));
        g_assert_null(strchr(l1, ' '));

        g_assert_cmpint(atomic_file_commit(&a), ==, 0);
        g_assert_cmpint(a.fd, <, 0);
        g_autofree char *c = contents(path);
        g_assert_true(g_str_has_prefix(c, "line 0\nline 1\n"));
        g_assert_true(g_str_has_suffix(c, "line 999\n"));
        g_autofree char *l2 = listing(f->dir);
        g_assert_cmpstr(l2, ==, "certkeeper.prom");

        /* Discarded: nothing is left, and an existing file is untouched. */
        g_assert_cmpint(atomic_file_open(path, 0644, 0, &a), ==, 0);
        g_assert_cmpint(loop_write(a.fd, "junk", 4), ==, 0);
        atomic_file_discard(&a);
        atomic_file_discard(&a); /* twice is harmless */
        g_autofree char *c2 = contents(path);
        g_assert_true(g_str_has_prefix(c2, "line 0\n"));
        g_autofree char *l3 = listing(f->dir);
        g_assert_cmpstr(l3, ==, "certkeeper.prom");
}

static void test_owner(Fixture *f, gconstpointer data) {
        _cleanup_close_ int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        /* As root, hand it to nobody; otherwise our own ids are all we may give. */
        uid_t uid = geteuid() == 0 ? 65534 : geteuid();
        gid_t gid = geteuid() == 0 ? 65534 : getegid();

        g_assert_cmpint(write_file_atomic_at(dfd, "privkey.pem", "key", 3, 0640, uid, gid, 0), ==, 0);
        g_assert_cmpint(fstatat(dfd, "privkey.pem", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
        g_assert_cmpuint(st.st_uid, ==, uid);
        g_assert_cmpuint(st.st_gid, ==, gid);
        /* The mode survives the chown (set first). */
        g_assert_cmpint(st.st_mode & 07777, ==, 0640);

        if (geteuid() != 0) {
                /* Giving a file away fails cleanly and leaves nothing behind. */
                g_assert_cmpint(write_file_atomic_at(dfd, "other", "x", 1, 0644, 0, 0, 0), ==, -EPERM);
                g_autofree char *l = listing(f->dir);
                g_assert_cmpstr(l, ==, "privkey.pem");
        }
}

static void test_errors(Fixture *f, gconstpointer data) {
        g_autofree char *missing = g_build_filename(f->dir, "no-such-dir", "file", NULL);
        g_assert_cmpint(write_file_atomic(missing, "x", 1, 0644), ==, -ENOENT);
        g_assert_cmpint(write_file_atomic("", "x", 1, 0644), ==, -EINVAL);

        _cleanup_close_ int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(write_file_atomic_at(dfd, "a/b", "x", 1, 0644, (uid_t) -1, (gid_t) -1, 0), ==, -EINVAL);
        g_assert_cmpint(write_file_atomic_at(-EBADF, "a", "x", 1, 0644, (uid_t) -1, (gid_t) -1, 0), ==, -EINVAL);

        /* A directory in the way: the rename fails and the temporary file goes. */
        g_autofree char *sub = g_build_filename(f->dir, "sub", NULL);
        g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
        g_autofree char *inner = g_build_filename(sub, "x", NULL);
        g_assert_true(g_file_set_contents(inner, "x", -1, NULL));
        g_assert_cmpint(write_file_atomic(sub, "x", 1, 0644), <, 0);
        g_autofree char *l = listing(f->dir);
        g_assert_cmpstr(l, ==, "sub");
        g_assert_cmpint(g_unlink(inner), ==, 0);
        g_assert_cmpint(g_rmdir(sub), ==, 0);

        /* A name as long as a name may be still gets a temporary name that fits. */
        char name[NAME_MAX + 1];
        memset(name, 'n', NAME_MAX);
        name[NAME_MAX] = '\0';
        g_assert_cmpint(write_file_atomic_at(dfd, name, "x", 1, 0644, (uid_t) -1, (gid_t) -1, 0), ==, 0);
        g_autofree char *l2 = listing(f->dir);
        g_assert_cmpstr(l2, ==, name);
}

static void test_loop_write(void) {
        int p[2];
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(loop_write(p[1], "abc", 3), ==, 0);
        char buf[4] = {0};
        g_assert_cmpint(read(p[0], buf, 3), ==, 3);
        g_assert_cmpstr(buf, ==, "abc");
        close(p[0]);
        /* Nobody reads: EPIPE (SIGPIPE is ignored for this). */
        signal(SIGPIPE, SIG_IGN);
        g_assert_cmpint(loop_write(p[1], "abc", 3), ==, -EPIPE);
        close(p[1]);
        g_assert_cmpint(loop_write(-1, "abc", 3), ==, -EBADF);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/fileio/create", test_create);
        ADD("/fileio/replace", test_replace);
        ADD("/fileio/noreplace", test_noreplace);
        ADD("/fileio/symlink", test_symlink);
        ADD("/fileio/stream", test_stream);
        ADD("/fileio/owner", test_owner);
        ADD("/fileio/errors", test_errors);
        g_test_add_func("/fileio/loop-write", test_loop_write);
        return g_test_run();
}
