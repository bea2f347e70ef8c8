/* eval/tasks.c - the built-in task worlds.
 *
 * Reasoning: GSM8K-style word problems (question, answer with one solution
 * step per line, a calculator annotation <<a op b=r>> on each, "#### N").
 * Two structures: a running quantity changed by events (one protagonist) and
 * a relational chain (each person's amount defined from the previous one's),
 * each told in several scenarios (shopping, baking, travel, library, garden,
 * inventory, sharing, ages, rates). Integers only; every intermediate result
 * lies in [1, max_number]; division is exact.
 * Splits are disjoint by construction: a problem's arithmetic skeleton
 * (structure, start, operations, operands, step count) is hashed, and the
 * hash alone decides its split (train 70%, distill 15%, calib 5%, test 10%),
 * so no problem can occur in two splits, whatever the names and wording.
 *
 * General ability: a generated world of creatures (name, colour, home,
 * kind, weight), a plain-text corpus stating its facts in several
 * paraphrases, and multiple-choice items on it (attribute recall, kind,
 * comparison of two weights, subject-verb agreement, WinoGrande-style: which
 * creature a stated fact belongs to). One fact per item, no chains.
 */
#include "../red.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const char *pick(red_rng *r, const char *const *list, int n) { return list[red_rng_below(r, (uint64_t)n)]; }

static int64_t between(red_rng *r, int64_t lo, int64_t hi) {  /* inclusive */
    return lo + (int64_t)red_rng_below(r, (uint64_t)(hi - lo + 1));
}

red_status red_split_parse(const char *name, red_split *s) {
    if (!strcmp(name, "train")) *s = RED_SPLIT_TRAIN;
    else if (!strcmp(name, "distill")) *s = RED_SPLIT_DISTILL;
    else if (!strcmp(name, "calib")) *s = RED_SPLIT_CALIB;
    else if (!strcmp(name, "test")) *s = RED_SPLIT_TEST;
    else return RED_E_ARG;
    return RED_OK;
}

/* The split a skeleton hash belongs to: [0,70) train, [70,85) distill,
 * [85,90) calib, [90,100) test. */
static red_split red_split_of_hash(uint64_t h) {
    unsigned b = (unsigned)((h >> 11) % 100);
    return b < 70 ? RED_SPLIT_TRAIN : b < 85 ? RED_SPLIT_DISTILL : b < 90 ? RED_SPLIT_CALIB : RED_SPLIT_TEST;
}

/* ------------------------------------------------------------------ reasoning */

static const char *const names[] = {"Mia", "Liam", "Ava", "Noah", "Zoe", "Omar", "Lena", "Ravi", "Nora", "Hugo",
                                    "Iris", "Kofi", "Yuki", "Sara", "Tom", "Ada", "Max", "Ella", "Ivan", "Rosa"};
#define N_NAMES ((int)(sizeof names / sizeof names[0]))

typedef struct {
    const char *unit;                 /* plural noun */
    const char *start;                /* "%s has %lld %s." (name, value, unit) */
    const char *add[2], *sub[2];      /* "%s ... %lld ..." (name, n) */
    const char *mul, *div;            /* "%s ... %s ..." (name, factor word) */
    const char *ask;                  /* "How many ... does %s have now?" (name) */
} scenario;

static const scenario scenarios[] = {
    {"dollars", "%s has %lld dollars.", {"%s earns %lld dollars walking dogs.", "%s gets %lld dollars as a gift."},
     {"%s spends %lld dollars on a book.", "%s pays %lld dollars for lunch."},
     "%s's savings grow to %s as much.", "%s splits the money equally into %s jars and keeps one jar.",
     "How many dollars does %s have now?"},
    {"cookies", "%s bakes %lld cookies.", {"%s bakes %lld more cookies.", "%s gets %lld cookies from a neighbor."},
     {"%s eats %lld of the cookies.", "%s gives %lld cookies to friends."},
     "%s makes %s as many cookies for a party.", "%s packs the cookies equally into %s boxes and keeps one box.",
     "How many cookies does %s have now?"},
    {"kilometers", "%s drives %lld kilometers on Monday.", {"On Tuesday %s drives %lld kilometers more.", "%s adds a %lld kilometer detour."},
     {"%s takes a shortcut that saves %lld kilometers.", "A closed road means %s skips %lld kilometers."},
     "By Friday %s has driven %s that distance.", "%s splits the distance equally over %s days and keeps one day's share.",
     "How many kilometers is that for %s?"},
    {"pages", "%s reads %lld pages of a novel.", {"%s reads %lld more pages before bed.", "On the train %s reads %lld pages."},
     {"%s forgets %lld pages and must reread them.", "%s skips %lld pages of notes."},
     "The next week %s reads %s as many pages.", "%s divides the pages equally into %s chapters and counts one chapter.",
     "How many pages is that for %s?"},
    {"flowers", "%s plants %lld flowers in the garden.", {"%s plants %lld more flowers.", "%s gets %lld flowers from a friend."},
     {"%s loses %lld flowers to rabbits.", "%s picks %lld flowers for a vase."},
     "By summer %s has %s as many flowers.", "%s shares the flowers equally among %s neighbors and keeps one share.",
     "How many flowers does %s have now?"},
    {"shirts", "%s's store has %lld shirts.", {"%s's store receives %lld more shirts.", "%s orders %lld new shirts."},
     {"%s's store sells %lld shirts.", "%s returns %lld damaged shirts."},
     "After a big delivery %s has %s as many shirts.", "%s sends the shirts equally to %s stores and keeps one part.",
     "How many shirts does %s have now?"},
    {"marbles", "%s has %lld marbles.", {"%s wins %lld marbles.", "%s finds %lld marbles in a box."},
     {"%s loses %lld marbles.", "%s trades away %lld marbles."},
     "%s's collection grows to %s its size.", "%s shares the marbles equally among %s friends and keeps one share.",
     "How many marbles does %s have now?"},
};
#define N_SCEN ((int)(sizeof scenarios / sizeof scenarios[0]))

/* relational chain: "%s has %lld more %s than %s." etc. */
typedef struct {
    const char *unit, *start, *more, *fewer, *times, *part, *ask;
    const char *verb, *ans_unit;  /* solution lines: "Ben has 3 + 4 = <<3+4=7>>7 stickers." */
} relation;

static const relation relations[] = {
    {"stickers", "%s has %lld stickers.", "%s has %lld more stickers than %s.", "%s has %lld fewer stickers than %s.",
     "%s has %s as many stickers as %s.", "%s has %s as many stickers as %s.", "How many stickers does %s have?",
     "has", "stickers"},
    {"years", "%s is %lld years old.", "%s is %lld years older than %s.", "%s is %lld years younger than %s.",
     "%s is %s as old as %s.", "%s is %s as old as %s.", "How old is %s?", "is", "years old"},
    {"apples", "%s picks %lld apples.", "%s picks %lld more apples than %s.", "%s picks %lld fewer apples than %s.",
     "%s picks %s as many apples as %s.", "%s picks %s as many apples as %s.", "How many apples does %s pick?",
     "picks", "apples"},
    {"widgets", "Machine %s makes %lld widgets per hour.", "Machine %s makes %lld more widgets per hour than machine %s.",
     "Machine %s makes %lld fewer widgets per hour than machine %s.", "Machine %s makes %s as many widgets per hour as machine %s.",
     "Machine %s makes %s as many widgets per hour as machine %s.", "How many widgets per hour does machine %s make?",
     "makes", "widgets per hour"},
};
#define N_REL ((int)(sizeof relations / sizeof relations[0]))

static const char *const machine_names[] = {"A", "B", "C", "D", "E", "F", "G"};

static const char *times_word(int64_t k) {
    static const char *const w[] = {"", "", "twice", "three times", "four times", "five times", "six times",
                                    "seven times", "eight times", "nine times"};
    return k >= 2 && k <= 9 ? w[k] : "many times";
}
static const char *part_word(int64_t k) {
    static const char *const w[] = {"", "", "half", "a third", "a quarter", "a fifth", "a sixth", "a seventh",
                                    "an eighth", "a ninth"};
    return k >= 2 && k <= 9 ? w[k] : "a part";
}
static const char *count_word(int64_t k) {
    static const char *const w[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
    return k >= 0 && k <= 9 ? w[k] : "many";
}

/* Chooses a feasible operation for value v, or 0 when none is allowed. */
static char choose_op(red_rng *r, const char *ops, int64_t v, int64_t M, int64_t *operand) {
    char feasible[4];
    int nf = 0, i;
    for (i = 0; ops[i]; i++) {
        char o = ops[i];
        if (o == '+' && v < M) feasible[nf++] = o;
        else if (o == '-' && v >= 2) feasible[nf++] = o;
        else if (o == '*' && v * 2 <= M) feasible[nf++] = o;
        else if (o == '/') {
            int64_t k;
            for (k = 2; k <= 9; k++)
                if (v % k == 0 && v / k >= 1) break;
            if (k <= 9) feasible[nf++] = o;
        }
    }
    if (!nf) return 0;
    {
        char o = feasible[red_rng_below(r, (uint64_t)nf)];
        if (o == '+') *operand = between(r, 1, M - v < M / 2 + 1 ? M - v : M / 2 + 1);
        else if (o == '-') *operand = between(r, 1, v - 1);
        else if (o == '*') {
            int64_t kmax = M / v < 5 ? M / v : 5;
            *operand = between(r, 2, kmax);
        } else {
            int64_t divs[8], nd = 0, k;
            for (k = 2; k <= 9; k++)
                if (v % k == 0) divs[nd++] = k;
            *operand = divs[red_rng_below(r, (uint64_t)nd)];
        }
        return o;
    }
}

static int64_t apply_op(int64_t v, char o, int64_t x) {
    return o == '+' ? v + x : o == '-' ? v - x : o == '*' ? v * x : v / x;
}

/* "Kofi loses 2 flowers." -> "Kofi loses 2 flowers: " in the answer. Restating the sentence keeps
   the operation word next to the arithmetic, so a small model decides + - * / from local context
   instead of counting sentences back in the question. */
static void restate_sentence(red_sbuf *a, const red_sbuf *q, size_t from) {
    size_t n = q->len - from;
    if (n && q->p[from + n - 1] == '.') n--;
    red_sbuf_put(a, q->p + from, n);
    red_sbuf_puts(a, ": ");
}

/* Prefixes the sentence q[from..] with "On <day>, " (day k of the week): a
 * key the solution line can look up, so copying the k-th step's sentence is
 * a plain induction (find the key, continue) instead of counting sentences.
 * The sentence's first letter is lowered unless it starts with `name`. */
static void key_sentence(red_sbuf *q, size_t from, int day, const char *name) {
    static const char *const days[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
    size_t n = q->len - from;
    char *tail = malloc(n + 1);
    if (!tail) {
        q->failed = 1;
        return;
    }
    memcpy(tail, q->p + from, n);
    tail[n] = 0;
    if (strncmp(tail, name, strlen(name)) && tail[0] >= 'A' && tail[0] <= 'Z') tail[0] = (char)(tail[0] - 'A' + 'a');
    q->len = from;
    red_sbuf_printf(q, "On %s, ", days[day % 7]);
    red_sbuf_put(q, tail, n);
    free(tail);
}

/* The arithmetic of a solution line: "5 - 2 = <<5-2=3>>3 flowers.\n". */
static void put_step(red_sbuf *a, int64_t cur, char op, int64_t x, int64_t nv, const char *unit) {
    red_sbuf_printf(a, "%lld %c %lld = <<%lld%c%lld=%lld>>%lld %s.\n", (long long)cur, op, (long long)x, (long long)cur,
                    op, (long long)x, (long long)nv, (long long)nv, unit);
}

/* One problem into q (question) and a (answer); returns its skeleton hash. */
static uint64_t reasoning_one(red_rng *r, const red_reasoning_opts *o, red_sbuf *q, red_sbuf *a) {
    int steps = (int)between(r, o->min_steps, o->max_steps), s, family = (int)red_rng_below(r, 2);
    int64_t M = o->max_number, v, x[8];
    size_t q0;
    char ops[8];
    uint64_t h = 1469598103934665603ull;
    int tries;
    /* the arithmetic first (retry until every step is feasible) */
    for (tries = 0;; tries++) {
        v = between(r, 2, M / 2 > 2 ? M / 2 : 2);
        {
            int64_t cur = v;
            for (s = 0; s < steps; s++) {
                ops[s] = choose_op(r, o->ops, cur, M, &x[s]);
                if (!ops[s]) break;
                cur = apply_op(cur, ops[s], x[s]);
            }
        }
        if (s == steps || tries > 1000) break;
    }
    h = fnv1a(&family, sizeof family, h);
    h = fnv1a(&steps, sizeof steps, h);
    h = fnv1a(&v, sizeof v, h);
    for (s = 0; s < steps; s++) {
        h = fnv1a(&ops[s], 1, h);
        h = fnv1a(&x[s], sizeof x[s], h);
    }
    if (family == 0) {  /* running quantity */
        const scenario *sc = &scenarios[red_rng_below(r, N_SCEN)];
        const char *nm = pick(r, names, N_NAMES);
        int64_t cur = v;
        q0 = q->len;
        red_sbuf_printf(q, sc->start, nm, (long long)v, sc->unit);
        if (o->keyed) key_sentence(q, q0, 0, nm);
        for (s = 0; s < steps; s++) {
            int64_t nv = apply_op(cur, ops[s], x[s]);
            red_sbuf_puts(q, " ");
            q0 = q->len;
            if (ops[s] == '+') red_sbuf_printf(q, sc->add[red_rng_below(r, 2)], nm, (long long)x[s]);
            else if (ops[s] == '-') red_sbuf_printf(q, sc->sub[red_rng_below(r, 2)], nm, (long long)x[s]);
            else if (ops[s] == '*') red_sbuf_printf(q, sc->mul, nm, times_word(x[s]));
            else red_sbuf_printf(q, sc->div, nm, count_word(x[s]));
            if (o->keyed) key_sentence(q, q0, s + 1, nm);
            if (o->restate) restate_sentence(a, q, q0);
            else red_sbuf_printf(a, "%s %s has ", s ? "Then" : "First", nm);
            put_step(a, cur, ops[s], x[s], nv, sc->unit);
            cur = nv;
        }
        red_sbuf_puts(q, " ");
        red_sbuf_printf(q, sc->ask, nm);
        red_sbuf_printf(a, "#### %lld", (long long)cur);
    } else {  /* relational chain over steps+1 people */
        const relation *rl = &relations[red_rng_below(r, N_REL)];
        int machines = rl == &relations[3];
        const char *who[8] = {0};
        int64_t cur = v;
        int k = 0, used[N_NAMES] = {0};
        for (s = 0; s <= steps; s++) {
            if (machines) who[s] = machine_names[s];
            else {
                do k = (int)red_rng_below(r, N_NAMES);
                while (used[k]);
                used[k] = 1;
                who[s] = names[k];
            }
        }
        q0 = q->len;
        red_sbuf_printf(q, rl->start, who[0], (long long)v);
        if (o->keyed) key_sentence(q, q0, 0, who[0]);
        for (s = 0; s < steps; s++) {
            int64_t nv = apply_op(cur, ops[s], x[s]);
            red_sbuf_puts(q, " ");
            q0 = q->len;
            if (ops[s] == '+') red_sbuf_printf(q, rl->more, who[s + 1], (long long)x[s], who[s]);
            else if (ops[s] == '-') red_sbuf_printf(q, rl->fewer, who[s + 1], (long long)x[s], who[s]);
            else if (ops[s] == '*') red_sbuf_printf(q, rl->times, who[s + 1], times_word(x[s]), who[s]);
            else red_sbuf_printf(q, rl->part, who[s + 1], part_word(x[s]), who[s]);
            if (o->keyed) key_sentence(q, q0, s + 1, who[s + 1]);
            if (o->restate) restate_sentence(a, q, q0);
            else red_sbuf_printf(a, "%s%s %s ", machines ? "Machine " : "", who[s + 1], rl->verb);
            put_step(a, cur, ops[s], x[s], nv, rl->ans_unit);
            cur = nv;
        }
        red_sbuf_puts(q, " ");
        red_sbuf_printf(q, rl->ask, who[steps]);
        red_sbuf_printf(a, "#### %lld", (long long)cur);
    }
    return h;
}

red_status red_tasks_reasoning(const red_reasoning_opts *o, red_sbuf *out, red_error *err) {
    red_rng r;
    int64_t made = 0, tries = 0;
    const char *p;
    if (o->min_steps < 1 || o->max_steps > 6 || o->min_steps > o->max_steps)
        return red_error_set(err, RED_E_ARG, "tasks: steps must satisfy 1 <= A <= B <= 6");
    if (o->max_number < 10 || o->max_number > 1000000000)
        return red_error_set(err, RED_E_ARG, "tasks: --max-number must be in 10..1e9");
    if (!o->ops || !*o->ops) return red_error_set(err, RED_E_ARG, "tasks: --ops is empty");
    for (p = o->ops; *p; p++)
        if (!strchr("+-*/", *p)) return red_error_set(err, RED_E_ARG, "tasks: --ops may only contain + - * /");
    /* one stream per (seed, split): splits are independent draws */
    red_rng_seed(&r, o->seed * 4 + (uint64_t)o->split);
    while (made < o->n) {
        red_sbuf q, a;
        uint64_t h;
        red_sbuf_init(&q);
        red_sbuf_init(&a);
        red_sbuf_puts(&q, "");
        red_sbuf_puts(&a, "");
        h = reasoning_one(&r, o, &q, &a);
        if (red_split_of_hash(h) == o->split) {
            red_sbuf_puts(out, "{\"question\": ");
            red_json_put_string(out, q.p, q.len);
            red_sbuf_puts(out, ", \"answer\": ");
            red_json_put_string(out, a.p, a.len);
            red_sbuf_puts(out, "}\n");
            made++;
        }
        red_sbuf_free(&q);
        red_sbuf_free(&a);
        if (++tries > 1000 * (o->n + 10))
            return red_error_set(err, RED_E_ARG, "tasks: cannot find %lld distinct problems for this split with these settings",
                                 (long long)o->n);
    }
    if (out->failed) return red_error_set(err, RED_E_NOMEM, "tasks: out of memory");
    return RED_OK;
}

/* ------------------------------------------------------------------ the general-ability world */

static const char *const syll[] = {"ba", "ko", "ri", "mu", "ze", "ta", "lo", "ni", "vu", "pe", "sa", "dro",
                                   "fi", "ga", "hu", "ju", "kel", "mor", "nex", "pli"};
static const char *const colors[] = {"red", "blue", "green", "yellow", "purple", "orange", "white", "black"};
static const char *const kinds[] = {"bird", "fish", "insect", "reptile", "mammal", "plant"};
static const char *const places[] = {"Ashford", "Brindle", "Corvale", "Dunmere", "Elmsby", "Farrow", "Glenhaven",
                                     "Harlow", "Istead", "Juniper Bay"};
#define NCOL 8
#define NKIND 6
#define NPLACE 10

typedef struct {
    char name[16];
    int color, kind, place, weight;
} creature;

/* The world is a function of world_seed only, so corpus and items agree. */
static int make_world(uint64_t world_seed, int n, creature *w) {
    red_rng r;
    int i, j;
    red_rng_seed(&r, world_seed ^ 0x5eed0f3011dull);
    for (i = 0; i < n; i++) {
        int again;
        do {  /* unique two- or three-syllable names */
            int ns = 2 + (int)red_rng_below(&r, 2), k;
            w[i].name[0] = 0;
            for (k = 0; k < ns; k++) strcat(w[i].name, syll[red_rng_below(&r, 20)]);
            again = 0;
            for (j = 0; j < i; j++)
                if (!strcmp(w[j].name, w[i].name)) again = 1;
        } while (again);
        w[i].color = (int)red_rng_below(&r, NCOL);
        w[i].kind = (int)red_rng_below(&r, NKIND);
        w[i].place = (int)red_rng_below(&r, NPLACE);
        do {  /* distinct weights so comparisons have one answer */
            w[i].weight = (int)between(&r, 1, 200);
            again = 0;
            for (j = 0; j < i; j++)
                if (w[j].weight == w[i].weight) again = 1;
        } while (again);
    }
    return n;
}

static void fact_sentence(red_rng *r, const creature *c, red_sbuf *out) {
    int f = (int)red_rng_below(r, 4), form = (int)red_rng_below(r, 3);
    switch (f) {
    case 0:
        red_sbuf_printf(out, form == 0 ? "The %s is %s." : form == 1 ? "All %ss are %s." : "A %s is always %s.", c->name,
                        colors[c->color]);
        break;
    case 1:
        red_sbuf_printf(out, form == 0 ? "The %s lives in %s." : form == 1 ? "You can find the %s in %s."
                                                                            : "The home of the %s is %s.",
                        c->name, places[c->place]);
        break;
    case 2:
        red_sbuf_printf(out, form == 0 ? "The %s is a kind of %s." : form == 1 ? "A %s is a %s." : "The %s belongs with the %ss.",
                        c->name, kinds[c->kind]);
        break;
    default:
        red_sbuf_printf(out, form == 0 ? "The %s weighs %d kilograms." : form == 1 ? "A grown %s weighs %d kilograms."
                                                                                    : "The weight of a %s is %d kilograms.",
                        c->name, c->weight);
    }
}

red_status red_tasks_corpus(const red_world_opts *o, red_sbuf *out, red_error *err) {
    creature w[256];
    red_rng r;
    int64_t i;
    int k;
    if (o->n_entities < 4 || o->n_entities > 256) return red_error_set(err, RED_E_ARG, "tasks: --entities must be 4..256");
    make_world(o->world_seed, o->n_entities, w);
    red_rng_seed(&r, o->seed * 4 + 3);
    /* every fact once in every wording first, then random lines */
    for (k = 0; k < o->n_entities; k++) {
        red_sbuf_printf(out, "The %s is %s. The %s lives in %s. The %s is a kind of %s. The %s weighs %d kilograms.\n",
                        w[k].name, colors[w[k].color], w[k].name, places[w[k].place], w[k].name, kinds[w[k].kind],
                        w[k].name, w[k].weight);
    }
    for (i = 0; i < o->n; i++) {
        int s, ns = 1 + (int)red_rng_below(&r, 3);
        for (s = 0; s < ns; s++) {
            if (s) red_sbuf_puts(out, " ");
            fact_sentence(&r, &w[red_rng_below(&r, (uint64_t)o->n_entities)], out);
        }
        red_sbuf_puts(out, "\n");
    }
    if (out->failed) return red_error_set(err, RED_E_NOMEM, "tasks: out of memory");
    return RED_OK;
}

/* Puts gold among distractor indices drawn from [0, n), shuffled; returns the gold position. */
static int choices_with(red_rng *r, int gold, int n, int want, int *out) {
    int k = 0, i, g;
    out[k++] = gold;
    while (k < want) {
        int c = (int)red_rng_below(r, (uint64_t)n), dup = 0;
        for (i = 0; i < k; i++) dup |= out[i] == c;
        if (!dup) out[k++] = c;
    }
    for (i = want - 1; i > 0; i--) {  /* Fisher-Yates */
        int j = (int)red_rng_below(r, (uint64_t)i + 1), t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
    for (g = 0; g < want; g++)
        if (out[g] == gold) break;
    return g;
}

red_status red_tasks_choice(const red_world_opts *o, red_sbuf *out, red_error *err) {
    creature w[256];
    red_rng r;
    int64_t made = 0, tries = 0;
    if (o->n_entities < 4 || o->n_entities > 256) return red_error_set(err, RED_E_ARG, "tasks: --entities must be 4..256");
    make_world(o->world_seed, o->n_entities, w);
    red_rng_seed(&r, o->seed * 4 + (uint64_t)o->split);
    while (made < o->n) {
        int type = (int)red_rng_below(&r, 6), e = (int)red_rng_below(&r, (uint64_t)o->n_entities), c[4], g, k;
        int e2 = (int)red_rng_below(&r, (uint64_t)o->n_entities);
        uint64_t h = fnv1a(&type, sizeof type, 1469598103934665603ull);
        red_sbuf item;
        h = fnv1a(&e, sizeof e, h);
        if (type == 3 || type == 4) {
            if (e2 == e) continue;
            h = fnv1a(&e2, sizeof e2, h);
        }
        if (++tries > 1000 * (o->n + 10)) return red_error_set(err, RED_E_ARG, "tasks: too few distinct items for this split");
        if (red_split_of_hash(h) != o->split) continue;
        red_sbuf_init(&item);
        red_sbuf_puts(&item, "");
        if (type <= 2) {
            const char *const *names_of = type == 0 ? colors : type == 1 ? places : kinds;
            int n_of = type == 0 ? NCOL : type == 1 ? NPLACE : NKIND, gold_i = type == 0 ? w[e].color : type == 1 ? w[e].place : w[e].kind;
            char q[160];
            snprintf(q, sizeof q, type == 0 ? "Question: What color is the %s?\nAnswer:" : type == 1 ? "Question: Where does the %s live?\nAnswer:"
                                                                                              : "Question: What kind of animal or plant is the %s?\nAnswer:",
                     w[e].name);
            g = choices_with(&r, gold_i, n_of, 4, c);
            red_sbuf_puts(&item, "{\"query\": ");
            red_json_put_string(&item, q, strlen(q));
            red_sbuf_puts(&item, ", \"choices\": [");
            for (k = 0; k < 4; k++) {
                if (k) red_sbuf_puts(&item, ", ");
                red_json_put_string(&item, names_of[c[k]], strlen(names_of[c[k]]));
            }
            red_sbuf_printf(&item, "], \"gold\": %d}\n", g);
        } else if (type == 3) {  /* comparison: one judgement from two stated weights */
            char q[160];
            int heavier = w[e].weight > w[e2].weight ? 0 : 1;
            snprintf(q, sizeof q, "Question: Which is heavier, the %s or the %s?\nAnswer:", w[e].name, w[e2].name);
            red_sbuf_puts(&item, "{\"query\": ");
            red_json_put_string(&item, q, strlen(q));
            red_sbuf_printf(&item, ", \"choices\": [\"the %s\", \"the %s\"], \"gold\": %d}\n", w[e].name, w[e2].name, heavier);
        } else if (type == 5) {  /* agreement: one-step grammatical judgement */
            int plural = (int)red_rng_below(&r, 2), first_good = (int)red_rng_below(&r, 2);
            const char *good = plural ? "are" : "is", *bad = plural ? "is" : "are";
            red_sbuf_printf(&item, "{\"query\": \"The %s%s%s\", \"choices\": [\"%s %s.\", \"%s %s.\"], \"gold\": %d}\n",
                            plural ? "two " : "", w[e].name, plural ? "s" : "", first_good ? good : bad, colors[w[e].color],
                            first_good ? bad : good, colors[w[e].color], first_good ? 0 : 1);
        } else {  /* WinoGrande form: which creature the stated fact continues */
            int first_true = (int)red_rng_below(&r, 2);
            const creature *t = &w[e], *f = &w[e2];
            if (f->place == t->place) {
                red_sbuf_free(&item);
                continue;
            }
            red_sbuf_printf(&item, "{\"contexts\": [\"The %s\", \"The %s\"], \"continuation\": \"lives in %s.\", \"gold\": %d}\n",
                            first_true ? t->name : f->name, first_true ? f->name : t->name, places[t->place],
                            first_true ? 0 : 1);
        }
        red_sbuf_put(out, item.p, item.len);
        red_sbuf_free(&item);
        made++;
    }
    if (out->failed) return red_error_set(err, RED_E_NOMEM, "tasks: out of memory");
    return RED_OK;
}
