/* test_formats.c - every data format of the table (src/data/format.c) read
 * through the table from a source in model JSON: a small fixture per format,
 * parsed by nn_spec_parse, loaded by the format's load (or listed by its
 * scan). A format without a fixture here fails the test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "check.h"
#include "data/format.h"
#include "spec.h"
#include "tutil.h"

static char dir[512];

static const char *in_dir(const char *name, char *buf)
{
    snprintf(buf, 1024, "%s/%s", dir, name);
    return buf;
}

static int idx_file(const char *path, unsigned magic, int nd, const unsigned *dims, const unsigned char *data,
                    size_t n)
{
    unsigned char b[64];
    size_t len = 0;
    b[len++] = 0, b[len++] = 0, b[len++] = (unsigned char)(magic >> 8), b[len++] = (unsigned char)magic;
    for (int i = 0; i < nd; i++)
        for (int s = 24; s >= 0; s -= 8)
            b[len++] = (unsigned char)(dims[i] >> s);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b, 1, len, f) == len && fwrite(data, 1, n, f) == n;
    return (f && fclose(f) == 0 && ok) ? 0 : -1;
}

/* The fixture files of every format; 0 when all were written. */
static int fixtures(void)
{
    char p[1024], q[1024];
    static const unsigned char px[12] = {0, 50, 100, 150, 200, 250, 10, 20, 30, 40, 50, 60};
    unsigned idims[3] = {2, 2, 3}, ldims[1] = {2};
    static const unsigned char labs[2] = {1, 0};
    if (tu_write_file(in_dir("t.csv", p), "a,b,y\n1,2,x\n3,4,z\n5,6,x\n", 24) ||
        tu_write_file(in_dir("t.txt", p), "abcabcabcab", 11) ||
        idx_file(in_dir("img.idx", p), 0x803, 3, idims, px, 12) || idx_file(in_dir("lab.idx", q), 0x801, 1, ldims, labs, 2))
        return -1;
    if (mkdir(in_dir("imgs", p), 0700) || mkdir(in_dir("imgs/cat", p), 0700) || mkdir(in_dir("imgs/dog", p), 0700))
        return -1;
    if (!stbi_write_png(in_dir("imgs/cat/a.png", p), 2, 3, 1, px, 2) ||
        !stbi_write_png(in_dir("imgs/dog/b.png", p), 2, 3, 1, px + 6, 2))
        return -1;
    char list[2200];
    int n = snprintf(list, sizeof list, "path,label\n%s/imgs/cat/a.png,cat\n%s/imgs/dog/b.png,dog\n", dir, dir);
    return tu_write_file(in_dir("t.list", p), list, (size_t)n);
}

static void rm_fixtures(void)
{
    static const char *const files[] = {"t.csv", "t.txt", "img.idx", "lab.idx", "imgs/cat/a.png", "imgs/dog/b.png",
                                        "t.list", "imgs/cat", "imgs/dog", "imgs"};
    char p[1024];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (unlink(in_dir(files[i], p)))
            rmdir(p);
    rmdir(dir);
}

/* One source object per format (paths relative to the model file in dir) and the samples it holds. */
static const struct {
    const char *format, *source;
    size_t n;
} cases[] = {
    {"csv", "{\"format\":\"csv\",\"path\":\"t.csv\",\"label\":\"y\"}", 3},
    {"idx", "{\"format\":\"idx\",\"images\":\"img.idx\",\"labels\":\"lab.idx\"}", 2},
    {"images", "{\"format\":\"images\",\"path\":\"imgs\"}", 2},
    {"list", "{\"format\":\"list\",\"path\":\"t.list\"}", 2},
    {"text", "{\"format\":\"text\",\"path\":\"t.txt\",\"sequence_length\":3}", 3},
};

TEST(data_every_format)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/nnrun_fmt_XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(dir), "mkdtemp %s", dir);
    int bad = fixtures();
    if (bad)
        rm_fixtures();
    CHECK(!bad, "writing the fixtures in %s", dir);
    int rc = 0;
    for (int fi = 0; fi < nn_nformats && !rc; fi++) {
        const nn_format *f = &nn_formats[fi];
        size_t k = 0;
        while (k < sizeof cases / sizeof *cases && strcmp(cases[k].format, f->name))
            k++;
        if (k == sizeof cases / sizeof *cases) {
            nn_test_note(__FILE__, __LINE__, "format '%s' has no case in tests/unit/test_formats.c", f->name);
            rc = 1;
            break;
        }
        char json[1024], file[1024];
        snprintf(json, sizeof json, "{\"layers\":[{\"type\":\"flatten\"}],\"data\":{\"train\":%s}}", cases[k].source);
        nn_spec s;
        nn_err e;
        memset(&e, 0, sizeof e);
        if (nn_spec_parse(json, strlen(json), in_dir("m.json", file), &s, &e)) {
            nn_test_note(__FILE__, __LINE__, "%s: %s", f->name, e.msg);
            rc = 1;
            break;
        }
        nn_load_opts o;
        memset(&o, 0, sizeof o);
        size_t n = 0;
        if (f->load) {
            nn_dataset ds;
            rc = f->load(&s.train_src, &o, &ds, &e);
            n = ds.n;
            nn_dataset_free(&ds);
        } else {
            nn_imgset set;
            memset(&set, 0, sizeof set);
            rc = f->scan(&s.train_src, &o.labels, &set, &e);
            n = set.n;
            nn_imgset_free(&set);
        }
        nn_spec_free(&s);
        if (rc || n != cases[k].n) {
            nn_test_note(__FILE__, __LINE__, "%s: rc %d (%s), %zu samples, expected %zu", f->name, rc, e.msg, n,
                         cases[k].n);
            rc = 1;
        }
    }
    rm_fixtures();
    return rc;
}
