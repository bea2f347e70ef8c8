/* eval/svg.c - line plots as standalone SVG, drawn by red itself (no plotting
 * dependency): title, labelled axes with 1-2-5 ticks (linear) or decades
 * (log), grid, one polyline per series with optional markers, dashes and
 * error bars, and a legend. Written atomically. */
#include "../red.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 720
#define H 440
#define ML 78   /* margins: left, right, top, bottom */
#define MR 190
#define MT 44
#define MB 58

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"};

static void put_escaped(red_sbuf *b, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') red_sbuf_puts(b, "&lt;");
        else if (*s == '>') red_sbuf_puts(b, "&gt;");
        else if (*s == '&') red_sbuf_puts(b, "&amp;");
        else if (*s == '"') red_sbuf_puts(b, "&quot;");
        else red_sbuf_put(b, s, 1);
    }
}

/* A 1-2-5 step giving about `want` intervals over [lo, hi]. */
static double nice_step(double lo, double hi, int want) {
    double raw = (hi - lo) / want, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

typedef struct {
    double lo, hi;
    int log;
    double px0, px1;  /* pixel range */
} axis;

static double to_px(const axis *a, double v) {
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return a->px0 + t * (a->px1 - a->px0);
}

static void fmt_tick(char *buf, size_t cap, double v, double step) {
    if (step == 0) {  /* log axis: decades */
        snprintf(buf, cap, "%g", v);
        return;
    }
    if (fabs(v) < 1e-12 * step) v = 0.0;
    if (fabs(v) >= 1e4 && step >= 1) {  /* token counts: 200k, 1.2M (easier to read than 2e+05) */
        double unit = fabs(v) >= 1e6 ? 1e6 : 1e3, s = step / unit;
        snprintf(buf, cap, "%.*f%s", s >= 1 ? 0 : (int)ceil(-log10(s) - 1e-9), v / unit, unit == 1e6 ? "M" : "k");
    } else if (fabs(v) >= 1e5 || (fabs(v) < 1e-3 && v != 0.0)) snprintf(buf, cap, "%.0e", v);
    else if (step >= 1 || step == 0) snprintf(buf, cap, "%.0f", v);
    else snprintf(buf, cap, "%.*f", (int)ceil(-log10(step) - 1e-9), v);
}

/* Range of the data (with error bars) unless fixed by the plot. */
static void data_range(const red_series *s, int ns, int y, int logscale, double *lo, double *hi) {
    int i, k;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (k = 0; k < ns; k++)
        for (i = 0; i < s[k].n; i++) {
            double v = y ? s[k].y[i] : s[k].x[i], e = y && s[k].err ? s[k].err[i] : 0.0;
            if (!isfinite(v) || (logscale && v - e <= 0.0 && v <= 0.0)) continue;
            if (v - e < *lo) *lo = logscale && v - e <= 0 ? v : v - e;
            if (v + e > *hi) *hi = v + e;
        }
    if (!isfinite(*lo)) { *lo = logscale ? 1.0 : 0.0; *hi = logscale ? 10.0 : 1.0; }
    if (*hi <= *lo) { *hi = logscale ? *lo * 10.0 : *lo + 1.0; }
}

/* Axis ranges: the data's (or the plot's fixed bounds), widened to whole
 * ticks (decades on a log axis). */
static void fit_axes(const red_plot *p, const red_series *s, int ns, axis *ax, axis *ay) {
    double step;
    ax->log = p->logx;
    ay->log = p->logy;
    data_range(s, ns, 0, ax->log, &ax->lo, &ax->hi);
    data_range(s, ns, 1, ay->log, &ay->lo, &ay->hi);
    if (p->have_ymin) ay->lo = p->ymin;
    if (p->have_ymax) ay->hi = p->ymax;
    if (p->have_xmin) ax->lo = p->xmin;
    if (ax->log) { ax->lo = pow(10.0, floor(log10(ax->lo))); ax->hi = pow(10.0, ceil(log10(ax->hi))); }
    else if (!p->have_xmin) {
        step = nice_step(ax->lo, ax->hi, 6);
        if (p->integer_x && step < 1.0) step = 1.0;
        ax->lo = floor(ax->lo / step) * step;
        ax->hi = ceil(ax->hi / step) * step;
    }
    if (ay->log) { ay->lo = pow(10.0, floor(log10(ay->lo))); ay->hi = pow(10.0, ceil(log10(ay->hi))); }
    else if (!p->have_ymin || !p->have_ymax) {
        step = nice_step(ay->lo, ay->hi, 6);
        if (!p->have_ymin) ay->lo = floor(ay->lo / step) * step;
        if (!p->have_ymax) ay->hi = ceil(ay->hi / step) * step;
    }
    ax->px0 = ML; ax->px1 = W - MR;
    ay->px0 = H - MB; ay->px1 = MT;
}

/* Grid lines and tick labels of both axes. */
static void put_grid(red_sbuf *b, const red_plot *p, const axis *ax, const axis *ay) {
    int k;
    char t[64];
    for (k = 0; k < 2; k++) {
        const axis *a = k ? ay : ax;
        double v, st2 = a->log ? 0.0 : nice_step(a->lo, a->hi, 6);
        if (!k && p->integer_x && st2 < 1.0) st2 = 1.0;
        for (v = a->log ? a->lo : ceil(a->lo / st2 - 1e-9) * st2; v <= a->hi * (1 + 1e-9) + (a->log ? 0 : 1e-12);
             v = a->log ? v * 10.0 : v + st2) {
            double px = to_px(a, v);
            fmt_tick(t, sizeof t, v, st2);
            if (k) {
                red_sbuf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", ML, px, W - MR, px);
                red_sbuf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ML - 6, px + 4, t);
            } else {
                red_sbuf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>\n", px, MT, px, H - MB);
                red_sbuf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px, H - MB + 16, t);
            }
            if (a->log && v > 1e300) break;
        }
    }
}

/* The frame and the axis labels. */
static void put_frame(red_sbuf *b, const red_plot *p) {
    red_sbuf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", ML, MT,
                    W - MR - ML, H - MB - MT);
    red_sbuf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">", (ML + W - MR) / 2, H - 16);
    put_escaped(b, p->xlabel);
    red_sbuf_puts(b, "</text>\n");
    red_sbuf_printf(b, "<text x=\"18\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 %d)\">",
                    (MT + H - MB) / 2, (MT + H - MB) / 2);
    put_escaped(b, p->ylabel);
    red_sbuf_puts(b, "</text>\n");
}

static int drawable(const red_series *s, int i, const axis *ax, const axis *ay) {
    return isfinite(s->x[i]) && isfinite(s->y[i]) && !(ax->log && s->x[i] <= 0) && !(ay->log && s->y[i] <= 0);
}

/* One series: its polyline, then error bars and markers. */
static void put_series(red_sbuf *b, const red_series *s, const char *col, const axis *ax, const axis *ay) {
    int i, started = 0;
    red_sbuf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"", col,
                    s->width > 0 ? (s->width > 1.5 ? "2.5" : "1.2") : "1.8", s->dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (i = 0; i < s->n; i++) {
        if (!drawable(s, i, ax, ay)) continue;
        red_sbuf_printf(b, "%s%.1f,%.1f", started ? " " : "", to_px(ax, s->x[i]), to_px(ay, s->y[i]));
        started = 1;
    }
    red_sbuf_puts(b, "\"/>\n");
    for (i = 0; i < s->n; i++) {
        double px, py;
        if (!drawable(s, i, ax, ay)) continue;
        px = to_px(ax, s->x[i]);
        py = to_px(ay, s->y[i]);
        if (s->err && s->err[i] > 0) {
            double lo = s->y[i] - s->err[i], hi = s->y[i] + s->err[i];
            if (ay->log && lo <= 0) lo = ay->lo;
            red_sbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", px, to_px(ay, lo),
                            px, to_px(ay, hi), col);
        }
        if (s->markers) red_sbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py, col);
    }
}

static void put_legend(red_sbuf *b, const red_series *s, int ns) {
    int k;
    for (k = 0; k < ns; k++) {
        const char *col = s[k].color ? s[k].color : palette[k % 10];
        int y = MT + 8 + 18 * k;
        if (!s[k].label) continue;
        red_sbuf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                        W - MR + 12, y, W - MR + 36, y, col, s[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
        red_sbuf_printf(b, "<text x=\"%d\" y=\"%d\">", W - MR + 42, y + 4);
        put_escaped(b, s[k].label);
        red_sbuf_puts(b, "</text>\n");
    }
}

red_status red_svg_plot(const char *path, const red_plot *p, const red_series *s, int ns, red_error *err) {
    red_sbuf b;
    axis ax, ay;
    int k;
    red_status st;
    fit_axes(p, s, ns, &ax, &ay);
    red_sbuf_init(&b);
    red_sbuf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n", W, H, W, H);
    red_sbuf_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    red_sbuf_printf(&b, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">", (ML + W - MR) / 2);
    put_escaped(&b, p->title);
    red_sbuf_puts(&b, "</text>\n");
    put_grid(&b, p, &ax, &ay);
    put_frame(&b, p);
    /* series, clipped to the frame */
    red_sbuf_printf(&b, "<clipPath id=\"frame\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/></clipPath>\n<g clip-path=\"url(#frame)\">\n",
                    ML, MT, W - MR - ML, H - MB - MT);
    for (k = 0; k < ns; k++) put_series(&b, &s[k], s[k].color ? s[k].color : palette[k % 10], &ax, &ay);
    red_sbuf_puts(&b, "</g>\n");
    put_legend(&b, s, ns);
    red_sbuf_puts(&b, "</svg>\n");
    if (b.failed) {
        red_sbuf_free(&b);
        return red_error_set(err, RED_E_NOMEM, "svg: out of memory for %s", path);
    }
    st = red_write_file_atomic(path, b.p, b.len, err);
    red_sbuf_free(&b);
    return st;
}
