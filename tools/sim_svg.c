/*
 * sim_svg.c - SVG line charts (see sim_svg.h).  A fixed 720x420 canvas: axes with ticks
 * at round numbers (steps of 1, 2 or 5 times a power of ten, four to eight of them; decades
 * on a log axis), one polyline with dots per series, and a legend.
 * Colours come from a short palette chosen to stay apart when printed in grey.
 */
#include <errno.h>
#include <math.h>

#include "sim_svg.h"

#define SVG_W 720
#define SVG_H 420
#define SVG_L 70 /* plot area margins */
#define SVG_R 170
#define SVG_T 40
#define SVG_B 55

static const char *const svg_colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
					  "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

/* Writes s as SVG text: names and paths may hold '<' or '&'. */
static void svg_text(FILE *f, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			fputc(*s, f);
		}
}

struct svg_scale {
	double x0, x1, y0, y1;
	int x_log;
};

static double svg_x(const struct svg_scale *s, double x)
{
	double a = s->x_log ? log10(x) : x, lo = s->x_log ? log10(s->x0) : s->x0,
	       hi = s->x_log ? log10(s->x1) : s->x1;
	double w = SVG_W - SVG_L - SVG_R;
	return SVG_L + (hi > lo ? (a - lo) / (hi - lo) : 0.5) * w;
}

static double svg_y(const struct svg_scale *s, double y)
{
	double h = SVG_H - SVG_T - SVG_B;
	return SVG_T + h - (s->y1 > s->y0 ? (y - s->y0) / (s->y1 - s->y0) : 0.5) * h;
}

/* The tick step for [lo, hi]: 1, 2 or 5 times a power of ten, giving 4 to 8 intervals. */
static double svg_step(double lo, double hi)
{
	double span = hi - lo;
	if (!(span > 0))
		return 1;
	double p = pow(10, floor(log10(span / 4)));
	static const double mult[] = {1, 2, 5, 10};
	for (int i = 0; i < 4; i++)
		if (span / (mult[i] * p) <= 8)
			return mult[i] * p;
	return 10 * p;
}

/* Widens [*lo, *hi] to whole multiples of its tick step. */
static void svg_round_range(double *lo, double *hi)
{
	double st = svg_step(*lo, *hi);
	*lo = floor(*lo / st + 1e-9) * st;
	*hi = ceil(*hi / st - 1e-9) * st;
}

/* Draws the ticks of [lo, hi] at round numbers: tick(value) for each. */
#define SVG_FOR_TICKS(v, lo, hi)                                                                   \
	for (double st_ = svg_step(lo, hi), v = ceil((lo) / st_ - 1e-9) * st_;                     \
	     v <= (hi) + st_ * 1e-6; v += st_)

/* A tick's label: the value with its float noise removed (0.30000000000000004 is 0.3). */
static double svg_tick_value(double v, double lo, double hi)
{
	double st = svg_step(lo, hi);
	double r = round(v / st) * st;
	return fabs(r) < st * 1e-6 ? 0 : r;
}

static void svg_range(const struct svg_chart *c, const struct svg_series *ser, size_t n,
		      struct svg_scale *s)
{
	s->x0 = INFINITY;
	s->x1 = -INFINITY;
	s->y0 = INFINITY;
	s->y1 = -INFINITY;
	s->x_log = c->x_log;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ser[i].n; k++) {
			double x = ser[i].x[k], y = ser[i].y[k];
			if (c->x_log && x <= 0)
				continue;
			s->x0 = fmin(s->x0, x);
			s->x1 = fmax(s->x1, x);
			s->y0 = fmin(s->y0, y);
			s->y1 = fmax(s->y1, y);
		}
	if (!isfinite(s->x0)) {
		s->x0 = c->x_log ? 1 : 0;
		s->x1 = c->x_log ? 10 : 1;
		s->y0 = 0;
		s->y1 = 1;
	}
	if (c->y_min != c->y_max) {
		s->y0 = c->y_min;
		s->y1 = c->y_max;
	} else {
		s->y0 = s->y0 > 0 ? 0 : s->y0;
		s->y1 = s->y1 * 1.05 + (s->y1 == 0);
		svg_round_range(&s->y0, &s->y1);
	}
	if (!c->x_log)
		svg_round_range(&s->x0, &s->x1);
	if (c->x_log) {
		s->x0 = pow(10, floor(log10(s->x0)));
		s->x1 = pow(10, ceil(log10(s->x1)));
	}
}

static void svg_axes(FILE *f, const struct svg_chart *c, const struct svg_scale *s)
{
	int x_l = SVG_L, x_r = SVG_W - SVG_R, y_t = SVG_T, y_b = SVG_H - SVG_B;
	fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>\n", x_l,
		y_t, x_r - x_l, y_b - y_t);
	SVG_FOR_TICKS(y, s->y0, s->y1)
	{
		double py = svg_y(s, y);
		fprintf(f, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n", x_l, x_r,
			py, py);
		fprintf(f, "<text x='%d' y='%.1f' text-anchor='end' font-size='11'>%g</text>\n",
			x_l - 6, py + 4, svg_tick_value(y, s->y0, s->y1));
	}
	if (s->x_log) {
		for (double x = s->x0; x <= s->x1 * 1.0001; x *= 10) {
			double px = svg_x(s, x);
			fprintf(f, "<line x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#ddd'/>\n",
				px, px, y_t, y_b);
			fprintf(f,
				"<text x='%.1f' y='%d' text-anchor='middle' font-size='11'>%g"
				"</text>\n",
				px, y_b + 16, x);
		}
	} else {
		SVG_FOR_TICKS(x, s->x0, s->x1)
		{
			double px = svg_x(s, x);
			fprintf(f, "<line x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#ddd'/>\n",
				px, px, y_t, y_b);
			fprintf(f,
				"<text x='%.1f' y='%d' text-anchor='middle' font-size='11'>%g"
				"</text>\n",
				px, y_b + 16, svg_tick_value(x, s->x0, s->x1));
		}
	}
	fprintf(f, "<text x='%d' y='22' font-size='15' font-weight='bold'>", x_l);
	svg_text(f, c->title);
	fprintf(f, "</text>\n<text x='%d' y='%d' text-anchor='middle' font-size='12'>",
		(x_l + x_r) / 2, SVG_H - 15);
	svg_text(f, c->x_label);
	fprintf(f,
		"</text>\n<text transform='translate(18,%d) rotate(-90)' text-anchor='middle' "
		"font-size='12'>",
		(y_t + y_b) / 2);
	svg_text(f, c->y_label);
	fprintf(f, "</text>\n");
}

int svg_write_lines(FILE *f, const struct svg_chart *c, const struct svg_series *ser, size_t n)
{
	struct svg_scale s;
	svg_range(c, ser, n, &s);
	fprintf(f,
		"<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg'"
		" width='%d' height='%d' font-family='sans-serif'>\n<rect width='100%%' "
		"height='100%%' fill='white'/>\n",
		SVG_W, SVG_H);
	svg_axes(f, c, &s);
	for (size_t i = 0; i < n; i++) {
		const char *col = svg_colours[i % (sizeof(svg_colours) / sizeof(svg_colours[0]))];
		fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='", col,
			ser[i].dashed ? " stroke-dasharray='6,4'" : "");
		for (size_t k = 0; k < ser[i].n; k++)
			if (!c->x_log || ser[i].x[k] > 0)
				fprintf(f, "%.1f,%.1f ", svg_x(&s, ser[i].x[k]),
					svg_y(&s, ser[i].y[k]));
		fprintf(f, "'/>\n");
		if (ser[i].n <= 40)
			for (size_t k = 0; k < ser[i].n; k++)
				if (!c->x_log || ser[i].x[k] > 0)
					fprintf(
					    f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
					    svg_x(&s, ser[i].x[k]), svg_y(&s, ser[i].y[k]), col);
		int ly = SVG_T + 10 + (int)i * 20, lx = SVG_W - SVG_R + 12;
		fprintf(f,
			"<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='%s' stroke-width='2'%s/>\n",
			lx, lx + 22, ly, ly, col, ser[i].dashed ? " stroke-dasharray='6,4'" : "");
		fprintf(f, "<text x='%d' y='%d' font-size='12'>", lx + 28, ly + 4);
		svg_text(f, ser[i].name);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
	return ferror(f) ? -EIO : 0;
}
