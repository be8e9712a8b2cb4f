/*
 * cmd_watch.c — `hstore watch`: a live view of the cluster.
 *
 * One poller thread per node asks that node for its Raft status about five
 * times a second (each with its own client and a short deadline, so a dead
 * node never slows the view of the others).  The main thread draws a table of
 * every node (role, term, commit/applied/last index, snapshot index, leader)
 * with ncurses and keeps a scrolling list of events derived from successive
 * polls: the cluster's leader changing, the highest term rising, nodes
 * becoming unreachable or reachable again, roles changing.
 *
 * When stdout is not a terminal, no screen is drawn: each event is printed as
 * one line instead (handy in scripts and tests, with --duration).
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ncurses.h>

#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char watch_help[] =
    "Usage: hstore watch [OPTIONS]\n"
    "\n"
    "A live view of every node: role, term, commit, applied and last log index,\n"
    "snapshot index and the leader it knows, refreshed about 5 times a second, and\n"
    "below it a scrolling list of events with their times: leader changes, term\n"
    "changes, nodes becoming unreachable or reachable, role changes.  Press q to\n"
    "quit.  Works in any terminal, tmux included.  When stdout is not a terminal,\n"
    "the events are printed one per line instead of drawing a screen.\n"
    "\n"
    "Options:\n"
    "  --interval MS      time between polls of each node (default 200)\n"
    "  --duration SECONDS stop by itself after this long (default: until q)\n"
    "\n"
    "Examples:\n"
    "  hstore watch\n"
    "  hstore watch --duration 30 > events.txt    # events only, for 30 s\n"
    "Try it: run `hstore watch` in one window and in another kill the leader\n"
    "(`kill -9 <pid>` of the node that `hstore status` shows as leader).\n"
    "\n";

#define MAX_EVENTS 500

typedef struct poller {
    pthread_t th;
    const char *spec;
    int index;
    int timeout_ms;
    int interval_ms;
    atomic_bool *stop;
    pthread_mutex_t *mu;
    cli_node_status cur; /* guarded by mu */
    bool polled;         /* at least one poll finished (guarded by mu) */
} poller;

static void *poll_thread(void *arg)
{
    poller *p = arg;
    char err[128];
    net_client *c = net_client_new(p->spec, p->timeout_ms, err, sizeof err);
    while (!atomic_load(p->stop)) {
        uint64_t t0 = cli_now_ns();
        raft_status st;
        bool ok = c != NULL && net_client_status(c, p->index, &st, NULL, 0) == NET_OK;
        pthread_mutex_lock(p->mu);
        p->cur.ok = ok;
        if (ok)
            p->cur.st = st;
        p->polled = true;
        pthread_mutex_unlock(p->mu);
        int spent = (int)((cli_now_ns() - t0) / 1000000ULL);
        for (int left = p->interval_ms - spent; left > 0 && !atomic_load(p->stop); left -= 50)
            cli_sleep_ms(left < 50 ? left : 50);
    }
    net_client_free(c);
    return NULL;
}

typedef struct watch_state {
    char *events[MAX_EVENTS]; /* ring, oldest first from ev_start */
    int ev_start, ev_count;
    bool plain; /* print events to stdout instead of a screen */
    bool have_prev;
    cli_node_status prev[RAFT_MAX_NODES];
    bool prev_polled[RAFT_MAX_NODES];
    uint64_t prev_leader, prev_term;
} watch_state;

static void stamp(char *buf, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    snprintf(buf, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
}

static void add_event(watch_state *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_event(watch_state *w, const char *fmt, ...)
{
    char ts[32], msg[256], line[300];
    stamp(ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s  %s", ts, msg);
    if (w->plain) {
        printf("%s\n", line);
        fflush(stdout);
        return;
    }
    int slot;
    if (w->ev_count < MAX_EVENTS) {
        slot = (w->ev_start + w->ev_count) % MAX_EVENTS;
        w->ev_count++;
    } else {
        slot = w->ev_start;
        free(w->events[slot]);
        w->ev_start = (w->ev_start + 1) % MAX_EVENTS;
    }
    w->events[slot] = strdup(line);
}

/* Compares this round's statuses with the last and records what changed. */
static void derive_events(watch_state *w, const cli_node_status *s, const bool *polled, int n)
{
    uint64_t leader = cli_leader_of(s, n), term = 0;
    for (int i = 0; i < n; i++)
        if (s[i].ok && s[i].st.term > term)
            term = s[i].st.term;
    for (int i = 0; i < n; i++) {
        if (!polled[i])
            continue;
        bool was_known = w->have_prev && w->prev_polled[i];
        if (!was_known) {
            if (!s[i].ok)
                add_event(w, "node %" PRIu64 " (%s) unreachable", s[i].id, s[i].addr);
            continue;
        }
        if (w->prev[i].ok && !s[i].ok)
            add_event(w, "node %" PRIu64 " became unreachable", s[i].id);
        else if (!w->prev[i].ok && s[i].ok)
            add_event(w, "node %" PRIu64 " reachable again (%s, term %" PRIu64 ")", s[i].id,
                      raft_role_name(s[i].st.role), s[i].st.term);
        else if (s[i].ok && s[i].st.role != w->prev[i].st.role && s[i].st.role != RAFT_LEADER)
            add_event(w, "node %" PRIu64 ": %s -> %s (term %" PRIu64 ")", s[i].id,
                      raft_role_name(w->prev[i].st.role), raft_role_name(s[i].st.role),
                      s[i].st.term);
        if (s[i].ok && w->prev[i].ok && s[i].st.snapshot_index > w->prev[i].st.snapshot_index)
            add_event(w, "node %" PRIu64 " snapshot at index %" PRIu64, s[i].id,
                      s[i].st.snapshot_index);
    }
    if (term > w->prev_term && w->prev_term != 0)
        add_event(w, "term %" PRIu64 " -> %" PRIu64, w->prev_term, term);
    if (leader != w->prev_leader || !w->have_prev) {
        if (leader != 0)
            add_event(w, "leader: node %" PRIu64 " (term %" PRIu64 ")", leader, term);
        else if (w->have_prev)
            add_event(w, "no leader%s", w->prev_leader ? " (lost)" : "");
    }
    if (term > w->prev_term)
        w->prev_term = term;
    w->prev_leader = leader;
    memcpy(w->prev, s, sizeof(cli_node_status) * (size_t)n);
    memcpy(w->prev_polled, polled, sizeof(bool) * (size_t)n);
    w->have_prev = true;
}

enum { C_LEADER = 1, C_CAND, C_DOWN, C_HEAD };

static void draw(const watch_state *w, const char *spec, const cli_node_status *s,
                 const bool *polled, int n)
{
    erase();
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    char ts[32];
    stamp(ts, sizeof ts);
    attron(A_BOLD);
    mvprintw(0, 0, "hstore watch  %.*s", cols > 40 ? cols - 30 : 10, spec);
    attroff(A_BOLD);
    if (cols > 14)
        mvprintw(0, cols - 14, "%s", ts);
    uint64_t leader = cli_leader_of(s, n);
    mvprintw(1, 0, "leader: %s%" PRIu64 "   q quits", leader ? "node " : "none", leader);
    if (leader == 0)
        mvprintw(1, 0, "leader: none   q quits");
    if (has_colors())
        attron(COLOR_PAIR(C_HEAD));
    attron(A_BOLD);
    mvprintw(3, 0, "%4s  %-21s %-13s %6s %9s %9s %9s %9s %6s", "ID", "ADDRESS", "ROLE", "TERM",
             "COMMIT", "APPLIED", "LAST", "SNAPSHOT", "LEADER");
    attroff(A_BOLD);
    if (has_colors())
        attroff(COLOR_PAIR(C_HEAD));
    int y = 4;
    for (int i = 0; i < n && y < rows; i++, y++) {
        if (!polled[i]) {
            mvprintw(y, 0, "%4" PRIu64 "  %-21s %-13s", s[i].id, s[i].addr, "...");
            continue;
        }
        if (!s[i].ok) {
            int pair = has_colors() ? COLOR_PAIR(C_DOWN) : A_DIM;
            attron(pair);
            mvprintw(y, 0, "%4" PRIu64 "  %-21s %-13s", s[i].id, s[i].addr, "unreachable");
            attroff(pair);
            continue;
        }
        int attr = 0;
        if (s[i].st.role == RAFT_LEADER)
            attr = has_colors() ? COLOR_PAIR(C_LEADER) | A_BOLD : A_BOLD;
        else if (s[i].st.role != RAFT_FOLLOWER)
            attr = has_colors() ? COLOR_PAIR(C_CAND) : A_UNDERLINE;
        if (attr)
            attron(attr);
        mvprintw(y, 0,
                 "%4" PRIu64 "  %-21s %-13s %6" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64
                 " %9" PRIu64 " %6" PRIu64,
                 s[i].id, s[i].addr, raft_role_name(s[i].st.role), s[i].st.term, s[i].st.commit,
                 s[i].st.applied, s[i].st.last_index, s[i].st.snapshot_index, s[i].st.leader);
        if (attr)
            attroff(attr);
    }
    y++;
    if (y < rows) {
        attron(A_BOLD);
        mvprintw(y, 0, "events");
        attroff(A_BOLD);
        y++;
    }
    /* Newest events at the bottom; as many as fit. */
    int room = rows - y;
    int first = w->ev_count > room ? w->ev_count - room : 0;
    for (int i = first; i < w->ev_count && y < rows; i++, y++)
        mvprintw(y, 0, "%.*s", cols, w->events[(w->ev_start + i) % MAX_EVENTS]);
    refresh();
}

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

/* Parses `hstore watch` arguments.  -1 to go on; else the exit code. */
static int watch_parse_args(int argc, char **argv, cli_client_opts *o, uint64_t *interval,
                            double *duration)
{
    enum { O_INTERVAL = 3000, O_DURATION };
    static const struct option longopts[] = {
        CLI_CLIENT_LONGOPTS,
        {"interval", required_argument, NULL, O_INTERVAL},
        {"duration", required_argument, NULL, O_DURATION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_client_getopt_start(o);
    *interval = 200;
    *duration = 0;
    int c;
    while ((c = cli_client_getopt(argc, argv, ":h", longopts, o)) != -1) {
        if (c == CLI_OPT_BAD)
            return CLI_EXIT_USAGE;
        switch (c) {
        case 'h':
            fputs(watch_help, stdout);
            fputs(cli_client_opts_help, stdout);
            return CLI_EXIT_OK;
        case O_INTERVAL:
            if (cli_parse_u64(optarg, false, interval) != 0 || *interval < 20 ||
                *interval > 60000) {
                cli_err("--interval wants milliseconds from 20 to 60000, e.g. --interval 200");
                return CLI_EXIT_USAGE;
            }
            break;
        case O_DURATION:
            if (cli_parse_seconds(optarg, duration) != 0) {
                cli_err("--duration wants seconds, e.g. --duration 30");
                return CLI_EXIT_USAGE;
            }
            break;
        default: return cli_getopt_error(c, argv, "watch");
        }
    }
    if (optind < argc) {
        cli_err("watch takes no arguments; see `hstore watch --help`");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* One poller per node of spec (learnt, and the SPEC validated, once), not
 * yet started.  The number of nodes, or -1 after saying why. */
static int watch_make_pollers(const char *spec, int timeout_ms, int interval_ms, atomic_bool *stop,
                              pthread_mutex_t *mu, poller *pl)
{
    char err[256];
    uint64_t ids[RAFT_MAX_NODES];
    char hosts[RAFT_MAX_NODES][NET_ADDR_MAX];
    int ports[RAFT_MAX_NODES];
    int n = net_parse_spec(spec, ids, hosts, ports, RAFT_MAX_NODES, err, sizeof err);
    if (n <= 0) {
        cli_err("bad cluster SPEC '%s': %s; write it as ID=HOST:PORT,...", spec, err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        memset(&pl[i], 0, sizeof pl[i]);
        pl[i].spec = spec;
        pl[i].index = i;
        pl[i].timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
        pl[i].interval_ms = interval_ms;
        pl[i].stop = stop;
        pl[i].mu = mu;
        pl[i].cur.id = ids[i];
        snprintf(pl[i].cur.addr, sizeof pl[i].cur.addr, "%s:%d", hosts[i], ports[i]);
    }
    return n;
}

/* The screen (ncurses, colours when the terminal has them), or for plain
 * output the first line.  *scr is NULL in plain mode.  0, or an exit code
 * when the terminal cannot be driven. */
static int watch_open_screen(const watch_state *w, const char *spec, uint64_t interval,
                             SCREEN **scr)
{
    *scr = NULL;
    if (w->plain) {
        char ts[32];
        stamp(ts, sizeof ts);
        printf("%s  watching %s\n", ts, spec);
        fflush(stdout);
        return 0;
    }
    *scr = newterm(NULL, stdout, stdin);
    if (*scr == NULL) {
        cli_err("cannot drive this terminal (TERM=%s): set TERM (e.g. xterm-256color) or "
                "redirect stdout to get plain event lines",
                getenv("TERM") ? getenv("TERM") : "");
        return CLI_EXIT_USAGE;
    }
    set_term(*scr);
    cbreak();
    noecho();
    curs_set(0);
    keypad(stdscr, TRUE);
    timeout((int)interval);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(C_LEADER, COLOR_GREEN, -1);
        init_pair(C_CAND, COLOR_YELLOW, -1);
        init_pair(C_DOWN, COLOR_RED, -1);
        init_pair(C_HEAD, COLOR_CYAN, -1);
    }
    return 0;
}

/* Takes the pollers' latest statuses, derives events and draws them (or
 * prints them), round after round, until q, a signal or the duration. */
static void watch_loop(watch_state *w, const char *spec, poller *pl, int n, pthread_mutex_t *mu,
                       uint64_t interval, double duration)
{
    uint64_t end = duration > 0 ? cli_now_ns() + (uint64_t)(duration * 1e9) : 0;
    while (!got_signal && (end == 0 || cli_now_ns() < end)) {
        cli_node_status s[RAFT_MAX_NODES];
        bool polled[RAFT_MAX_NODES];
        pthread_mutex_lock(mu);
        for (int i = 0; i < n; i++) {
            s[i] = pl[i].cur;
            polled[i] = pl[i].polled;
        }
        pthread_mutex_unlock(mu);
        derive_events(w, s, polled, n);
        if (!w->plain) {
            draw(w, spec, s, polled, n);
            int ch = getch();
            if (ch == 'q' || ch == 'Q' || ch == 27)
                break;
        } else {
            cli_sleep_ms((int)interval);
        }
    }
}

int cmd_watch(int argc, char **argv)
{
    cli_client_opts o;
    uint64_t interval;
    double duration;
    int rc = watch_parse_args(argc, argv, &o, &interval, &duration);
    if (rc >= 0)
        return rc;
    char spec[CLI_SPEC_MAX];
    if (cli_resolve_spec(&o, spec, sizeof spec) != 0)
        return CLI_EXIT_USAGE;
    watch_state w = {0};
    w.plain = !isatty(1);
    atomic_bool stop = false;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    poller pl[RAFT_MAX_NODES];
    int ms = o.timeout_set ? (int)(o.timeout_s * 1000) : 500;
    int n = watch_make_pollers(spec, ms, (int)interval, &stop, &mu, pl);
    if (n < 0)
        return CLI_EXIT_USAGE;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    SCREEN *scr;
    if ((rc = watch_open_screen(&w, spec, interval, &scr)) != 0)
        return rc;
    int n_started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&pl[i].th, NULL, poll_thread, &pl[i]) != 0)
            break;
        n_started++;
    }
    watch_loop(&w, spec, pl, n, &mu, interval, duration);

    atomic_store(&stop, true);
    if (!w.plain)
        endwin();
    for (int i = 0; i < n_started; i++)
        pthread_join(pl[i].th, NULL);
    if (scr != NULL)
        delscreen(scr);
    for (int i = 0; i < w.ev_count; i++)
        free(w.events[(w.ev_start + i) % MAX_EVENTS]);
    return CLI_EXIT_OK;
}
