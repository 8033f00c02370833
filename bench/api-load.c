/* SPDX-License-Identifier: MIT */
/*
 * api-load: closed-loop JSON-RPC load against a Unix socket. Each of N
 * connections sends one request, waits for its reply, records the latency
 * and sends the next, for a fixed time. Every reply is checked (it must be
 * a result for the id sent, not an error). Prints one JSON object.
 *
 *   api-load --socket PATH [--clients N] [--seconds S] [--vms N]
 *            [--mode vmmd|qmp]
 *
 * vmmd mode alternates vm.info on a random one of vm-0..vm-(N-1) and
 * vm.list; qmp mode (QEMU's monitor, after its capabilities handshake)
 * sends query-status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 100000 /* latencies up to 100 ms at 1 us resolution */
#define BUF_SIZE (1 << 20)

enum mode { MODE_VMMD, MODE_QMP };

struct conn {
	int fd;
	char *buf;
	size_t len;
	uint64_t sent_ns;
	long id;
	int handshake; /* qmp: 0 greeting, 1 capabilities reply, 2 ready */
};

struct load {
	enum mode mode;
	int vms;
	uint64_t requests, errors, overflow;
	uint32_t *hist;
	unsigned int seed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "api-load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write");
		s += w;
		n -= (size_t)w;
	}
}

static void send_request(struct load *l, struct conn *c)
{
	char req[256];
	int n;

	c->id++;
	if (l->mode == MODE_QMP)
		n = snprintf(req, sizeof(req), "{\"execute\":\"query-status\",\"id\":%ld}\n", c->id);
	else if (c->id % 2)
		n = snprintf(req, sizeof(req),
			     "{\"jsonrpc\":\"2.0\",\"method\":\"vm.info\",\"params\":{\"name\":\"vm-%d\"},\"id\":%ld}\n",
			     rand_r(&l->seed) % l->vms, c->id);
	else
		n = snprintf(req, sizeof(req),
			     "{\"jsonrpc\":\"2.0\",\"method\":\"vm.list\",\"id\":%ld}\n", c->id);
	c->sent_ns = now_ns();
	send_all(c->fd, req, (size_t)n);
}

/* The number after "id": (either spacing), or -1. */
static long reply_id(const char *line)
{
	const char *p = strstr(line, "\"id\"");

	if (!p)
		return -1;
	p += 4;
	while (*p == ' ' || *p == ':')
		p++;
	return strtol(p, NULL, 10);
}

/*
 * Good: our id and a result, not an error. vmmd writes its envelope first,
 * so the check reads only the start of a reply; QMP puts the id last.
 */
static bool reply_ok(const struct load *l, const struct conn *c, const char *line)
{
	char want[64];
	int n;

	if (l->mode == MODE_QMP)
		return reply_id(line) == c->id && strncmp(line, "{\"return\"", 9) == 0;
	n = snprintf(want, sizeof(want), "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":", c->id);
	return strncmp(line, want, (size_t)n) == 0;
}

static void record(struct load *l, const struct conn *c, bool ok)
{
	uint64_t us = (now_ns() - c->sent_ns) / 1000;

	l->requests++;
	l->errors += !ok;
	if (us < HIST_US)
		l->hist[us]++;
	else
		l->overflow++;
}

/* QMP greets, then wants qmp_capabilities before commands. */
static bool qmp_handshake(struct conn *c, const char *line)
{
	if (c->handshake == 0 && strstr(line, "\"QMP\"")) {
		static const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
		send_all(c->fd, caps, sizeof(caps) - 1);
		c->handshake = 1;
		return true;
	}
	if (c->handshake == 1 && strstr(line, "\"return\"")) {
		c->handshake = 2;
		return false; /* ready: send the first request */
	}
	return true;
}

static void handle_line(struct load *l, struct conn *c, const char *line, bool measuring)
{
	if (l->mode == MODE_QMP && c->handshake < 2) {
		if (qmp_handshake(c, line))
			return;
	} else if (l->mode == MODE_QMP && strstr(line, "\"event\"")) {
		return; /* asynchronous QMP events are not replies */
	} else if (measuring) {
		record(l, c, reply_ok(l, c, line));
	}
	send_request(l, c);
}

static void on_readable(struct load *l, struct conn *c, bool measuring)
{
	ssize_t n = read(c->fd, c->buf + c->len, BUF_SIZE - c->len - 1);
	char *start, *nl;

	if (n <= 0) {
		if (n < 0 && errno == EINTR)
			return;
		fprintf(stderr, "api-load: server closed a connection\n");
		exit(1);
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	start = c->buf;
	while ((nl = strchr(start, '\n'))) {
		*nl = '\0';
		handle_line(l, c, start, measuring);
		start = nl + 1;
	}
	c->len -= (size_t)(start - c->buf);
	memmove(c->buf, start, c->len);
}

static double percentile_us(const struct load *l, double p)
{
	uint64_t target = (uint64_t)((double)l->requests * p), seen = 0;

	for (int us = 0; us < HIST_US; us++) {
		seen += l->hist[us];
		if (seen > target)
			return us;
	}
	return HIST_US;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' }, { "vms", required_argument, NULL, 'v' },
		{ "mode", required_argument, NULL, 'm' },   { 0 },
	};
	const char *path = NULL;
	int clients = 64, vms = 50, opt, ep;
	double seconds = 5, warmup = 1;
	struct load l = { .mode = MODE_VMMD, .seed = 42 };
	struct conn *conns;
	struct epoll_event ev, events[256];
	uint64_t start, measure_from, end;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': path = optarg; break;
		case 'c': clients = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'v': vms = atoi(optarg); break;
		case 'm': l.mode = strcmp(optarg, "qmp") == 0 ? MODE_QMP : MODE_VMMD; break;
		default: return 2;
		}
	}
	if (!path || clients < 1 || vms < 1 || seconds <= 0) {
		fprintf(stderr, "usage: api-load --socket PATH [--clients N] [--seconds S] [--vms N] [--mode vmmd|qmp]\n");
		return 2;
	}
	l.vms = vms;
	l.hist = calloc(HIST_US, sizeof(*l.hist));
	conns = calloc((size_t)clients, sizeof(*conns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!l.hist || !conns || ep < 0)
		die("setup");
	for (int i = 0; i < clients; i++) {
		conns[i].fd = connect_to(path);
		conns[i].buf = malloc(BUF_SIZE);
		ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &conns[i] };
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
		if (l.mode == MODE_VMMD)
			send_request(&l, &conns[i]);
	}
	start = now_ns();
	measure_from = start + (uint64_t)(warmup * 1e9);
	end = measure_from + (uint64_t)(seconds * 1e9);
	for (uint64_t t = start; t < end; t = now_ns()) {
		int n = epoll_wait(ep, events, 256, 100);
		for (int i = 0; i < n; i++)
			on_readable(&l, events[i].data.ptr, t >= measure_from);
	}
	printf("{\"mode\":\"%s\",\"clients\":%d,\"seconds\":%.1f,\"requests\":%llu,\"errors\":%llu,"
	       "\"throughput\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"over_100ms\":%llu}\n",
	       l.mode == MODE_QMP ? "qmp" : "vmmd", clients, seconds,
	       (unsigned long long)l.requests, (unsigned long long)l.errors,
	       (double)l.requests / seconds, percentile_us(&l, 0.50), percentile_us(&l, 0.99),
	       (unsigned long long)l.overflow);
	return l.errors ? 1 : 0;
}
