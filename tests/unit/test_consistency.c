/* test_consistency.c - what must exist for every registered layer type and
 * every data format, so that adding one cannot skip a step:
 *   - docs/FORMATS.md names it as `NAME`;
 *   - README.md names it as `NAME` or "NAME";
 *   - the model-JSON fuzz dictionary (tests/fuzz/dict/spec.dict) has "\"NAME\"";
 *   - a unit test: a layer type appears as \"type\":\"NAME\" in the JSON of a
 *     tests/unit/test_*.c; every format has a case in test_formats.c (which
 *     fails by itself for a format without one) and appears as
 *     \"format\":\"NAME\" there.
 * Reads the files relative to the current folder (tests/run.sh runs the unit
 * tests from the repository root). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/format.h"
#include "layers/layer.h"
#include "util.h"

static char *slurp(const char *path)
{
    unsigned char *buf;
    size_t len;
    nn_err e;
    if (nn_read_file(path, 1 << 24, &buf, &len, &e))
        return NULL;
    char *s = realloc(buf, len + 1);
    if (!s) {
        free(buf);
        return NULL;
    }
    s[len] = 0;
    return s;
}

/* The text of every tests/unit/test_*.c, concatenated. */
static char *unit_sources(void)
{
    DIR *d = opendir("tests/unit");
    if (!d)
        return NULL;
    char *all = calloc(1, 1);
    size_t len = 0;
    struct dirent *de;
    while (all && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "test_", 5) || l < 3 || strcmp(de->d_name + l - 2, ".c") ||
            !strcmp(de->d_name, "test_consistency.c"))
            continue;
        char p[600];
        snprintf(p, sizeof p, "tests/unit/%s", de->d_name);
        char *s = slurp(p);
        size_t sl = s ? strlen(s) : 0;
        char *na = s ? realloc(all, len + sl + 1) : NULL;
        if (!na) {
            free(s);
            free(all);
            all = NULL;
            break;
        }
        all = na;
        memcpy(all + len, s, sl + 1);
        len += sl;
        free(s);
    }
    closedir(d);
    return all;
}

/* 1 when text contains the pattern fmt with NAME substituted (fmt has one %s). */
static int has(const char *text, const char *fmt, const char *name)
{
    char pat[256];
    snprintf(pat, sizeof pat, fmt, name);
    return strstr(text, pat) != NULL;
}

static int check_name(const char *kind, const char *name, const char *formats, const char *readme,
                      const char *dict, const char *units, const char *unit_pat)
{
    CHECK(has(formats, "`%s`", name), "%s '%s' is not named in docs/FORMATS.md (as `%s`)", kind, name, name);
    CHECK(has(readme, "`%s`", name) || has(readme, "\"%s\"", name), "%s '%s' is not named in README.md", kind, name);
    CHECK(has(dict, "\"\\\"%s\\\"\"", name), "%s '%s' is not in tests/fuzz/dict/spec.dict (kw_%s=\"\\\"%s\\\"\")",
          kind, name, name, name);
    CHECK(has(units, unit_pat, name), "%s '%s' has no unit test (no %s in tests/unit/test_*.c)", kind, name,
          unit_pat);
    return 0;
}

TEST(consistency_layers_and_formats)
{
    char *formats = slurp("docs/FORMATS.md"), *readme = slurp("README.md"), *dict = slurp("tests/fuzz/dict/spec.dict");
    char *units = unit_sources();
    int ok = formats && readme && dict && units;
    int rc = 0;
    if (ok) {
        for (int i = 0; !rc && nn_layer_types[i]; i++)
            rc = check_name("layer type", nn_layer_types[i]->name, formats, readme, dict, units,
                            "\\\"type\\\":\\\"%s\\\"");
        for (int i = 0; !rc && i < nn_nformats; i++)
            rc = check_name("data format", nn_formats[i].name, formats, readme, dict, units,
                            "\\\"format\\\":\\\"%s\\\"");
    }
    free(formats), free(readme), free(dict), free(units);
    CHECK(ok, "cannot read docs/FORMATS.md, README.md, tests/fuzz/dict/spec.dict or tests/unit/ (run from the "
              "repository root)");
    return rc;
}
