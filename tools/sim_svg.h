/*
 * sim_svg.h - small SVG line charts for the simulator's and the cost model's reports
 * (hit ratio against capacity, cost against capacity, TTFT distributions).  Written by
 * hand so that plots need nothing but a browser; one chart per file.
 */
#ifndef KVG_SIM_SVG_H
#define KVG_SIM_SVG_H

#include <stddef.h>
#include <stdio.h>

struct svg_series {
	const char *name;
	const double *x;
	const double *y;
	size_t n;
	int dashed; /* references (LRU, Belady) are drawn dashed */
};

struct svg_chart {
	const char *title;
	const char *x_label;
	const char *y_label;
	int x_log;    /* 1: logarithmic x axis (capacity percentages, latencies) */
	double y_min; /* y axis range; y_min == y_max picks one from the data */
	double y_max;
};

/* Writes a complete SVG document to f.  Returns 0, or -EIO if the write failed. */
int svg_write_lines(FILE *f, const struct svg_chart *chart, const struct svg_series *series,
		    size_t n_series);

#endif
