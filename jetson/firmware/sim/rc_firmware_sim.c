/*
 * rc-firmware-sim: runs build/rc_car.elf on a simulated ATmega328P at 16 MHz (simavr), paced to
 * the wall clock, with UART0 on a pseudo-terminal and the servo/ESC/LED pins measured.
 *
 *   rc-firmware-sim --pty /tmp/rc-car [--elf build/rc_car.elf] [--rc-steering-us 1500
 *                   --rc-throttle-us 1500 --rc-aux-us 1000] [--battery-mv 7400]
 *                   [--control FIFO|-] [--duration-ms N]
 *
 * stdout: one JSON object per line (README.md in this directory). Commands: control.c.
 * Exit status: 0 on SIGTERM/SIGINT/quit/--duration-ms, 1 if the simulated core crashed,
 * 2 for bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sim_avr.h>
#include <sim_core.h>
#include <sim_elf.h>
#include <sim_io.h>

#include "sim.h"

#define SLICE_CYCLES (100u * CYCLES_PER_US) /* host I/O and pacing every 100 us of simulated time */
#define WDR_OPCODE 0x95A8u
#define RJMP_SELF 0xCFFFu /* rjmp .-2 */
#define CLI_OPCODE 0x94F8u

static sim_t the_sim;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

uint64_t now_us(const sim_t *s) { return s->avr->cycle / CYCLES_PER_US; }

void emit(sim_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->out, fmt, ap);
    va_end(ap);
    fputc('\n', s->out);
    fflush(s->out);
}

static void log_to_stderr(avr_t *avr, const int level, const char *fmt, va_list ap)
{
    if (level <= (avr ? avr->log : LOG_ERROR))
        vfprintf(stderr, fmt, ap); /* never stdout: that is the JSON stream */
}

/* Called inside avr_reset (after simavr cleared the cycle timers); the rest waits for the loop. */
static void on_chip_reset(avr_t *avr)
{
    if (the_sim.chip_reset)
        the_sim.chip_reset(avr);
    the_sim.reset_pending = 1;
}

static void after_reset(sim_t *s)
{
    s->reset_pending = 0;
    s->resets++;
    int watchdog = (s->avr->data[R_MCUSR] >> MCUSR_WDRF) & 1;
    emit(s, "{\"t_us\": %llu, \"event\": \"reset\", \"cause\": \"%s\"}", (unsigned long long)now_us(s),
         watchdog ? "watchdog" : "other");
    if (s->hung) { /* the fault was transient: the chip restarts with its flash intact */
        for (int i = 0; i < 2; i++) {
            s->avr->flash[s->hang_pc + 2 * i] = (uint8_t)s->hang_saved[i];
            s->avr->flash[s->hang_pc + 2 * i + 1] = (uint8_t)(s->hang_saved[i] >> 8);
        }
        s->hung = 0;
    }
    outputs_on_reset(s);
    receiver_on_reset(s);
    serial_on_reset(s);
}

static uint16_t flash_word(const avr_t *avr, avr_flashaddr_t at) { return (uint16_t)(avr->flash[at] | (avr->flash[at + 1] << 8)); }

static void set_flash_word(avr_t *avr, avr_flashaddr_t at, uint16_t op)
{
    avr->flash[at] = (uint8_t)op;
    avr->flash[at + 1] = (uint8_t)(op >> 8);
}

/* At the firmware's `wdr`: HANG_LOOP puts a self-jump there (interrupts keep running), HANG_CLI
 * puts `cli` there and a self-jump after it (nothing but the hardware runs). */
static void hang_if_at_wdr(sim_t *s)
{
    avr_t *avr = s->avr;
    if (flash_word(avr, avr->pc) != WDR_OPCODE || avr->pc + 4 > avr->flashend + 1)
        return;
    s->hung = s->hang_armed;
    s->hang_armed = 0;
    s->hang_pc = avr->pc;
    s->hang_saved[0] = flash_word(avr, avr->pc);
    s->hang_saved[1] = flash_word(avr, avr->pc + 2);
    if (s->hung == HANG_CLI) {
        set_flash_word(avr, avr->pc, CLI_OPCODE);
        set_flash_word(avr, avr->pc + 2, RJMP_SELF);
    } else {
        set_flash_word(avr, avr->pc, RJMP_SELF);
    }
    emit(s, "{\"t_us\": %llu, \"event\": \"hang\", \"pc\": %u, \"interrupts\": %s}", (unsigned long long)now_us(s),
         (unsigned)avr->pc, s->hung == HANG_CLI ? "false" : "true");
}

typedef struct {
    int fd, keep_open;
    char fifo[512]; /* a FIFO we made (removed at exit), or "" */
    char buf[512];
    size_t n;
} control_in_t;

static int control_open(control_in_t *c, const char *path)
{
    c->n = 0;
    c->keep_open = -1;
    c->fifo[0] = 0;
    if (!strcmp(path, "-")) {
        c->fd = STDIN_FILENO;
    } else {
        if (mkfifo(path, 0600) == 0) {
            snprintf(c->fifo, sizeof c->fifo, "%s", path);
        } else if (errno != EEXIST) {
            fprintf(stderr, "rc-firmware-sim: cannot make the control FIFO %s: %s\n", path, strerror(errno));
            return -1;
        }
        c->fd = open(path, O_RDONLY | O_NONBLOCK);
        c->keep_open = c->fd >= 0 ? open(path, O_WRONLY | O_NONBLOCK) : -1; /* no EOF between writers */
        if (c->fd < 0) {
            fprintf(stderr, "rc-firmware-sim: cannot open the control FIFO %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

static void control_poll(sim_t *s, control_in_t *c)
{
    if (c->fd < 0)
        return;
    ssize_t r = read(c->fd, c->buf + c->n, sizeof c->buf - 1 - c->n);
    if (r == 0 && c->keep_open < 0) {
        c->fd = -1; /* stdin closed: no more commands, the board keeps running */
        return;
    }
    if (r <= 0)
        return;
    c->n += (size_t)r;
    char *nl;
    while ((nl = memchr(c->buf, '\n', c->n))) {
        *nl = 0;
        char line[sizeof c->buf];
        memcpy(line, c->buf, (size_t)(nl - c->buf) + 1);
        if (control_line(s, line) < 0) {
            fprintf(stderr, "rc-firmware-sim: bad control line '%s' (rc steering|throttle|aux US, battery MV, hang [cli], mark, quit)\n", c->buf);
            emit(s, "{\"t_us\": %llu, \"event\": \"error\", \"what\": \"bad control line\"}", (unsigned long long)now_us(s));
        }
        size_t used = (size_t)(nl - c->buf) + 1;
        memmove(c->buf, nl + 1, c->n - used);
        c->n -= used;
    }
    if (c->n == sizeof c->buf - 1)
        c->n = 0; /* an endless line: drop it */
}

static void usage(void)
{
    fprintf(stderr,
            "usage: rc-firmware-sim --pty PATH [--elf FILE] [--rc-steering-us US] [--rc-throttle-us US]\n"
            "                       [--rc-aux-us US] [--battery-mv MV] [--control FIFO|-] [--duration-ms MS]\n");
}

static int arg_u32(const char *name, const char *text, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long v = text ? strtoul(text, &end, 10) : 0;
    if (!text || *end || end == text || v > max) {
        fprintf(stderr, "rc-firmware-sim: %s needs a number up to %u, got '%s'\n", name, max, text ? text : "");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static void default_elf(const char *argv0, char *out, size_t size)
{
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(exe, sizeof exe, "%s", argv0);
        n = (ssize_t)strlen(exe);
    }
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        slash[1] = 0;
    else
        exe[0] = 0;
    snprintf(out, size, "%src_car.elf", exe); /* built next to us: build/rc_car.elf */
}

int main(int argc, char **argv)
{
    sim_t *s = &the_sim;
    char elf_path[600];
    const char *pty = NULL, *control = NULL;
    uint32_t widths[RC_COUNT] = {0, 0, 0}, battery_mv = 7400, duration_ms = 0;
    default_elf(argv[0], elf_path, sizeof elf_path);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--pty") && v) pty = v;
        else if (!strcmp(a, "--elf") && v) snprintf(elf_path, sizeof elf_path, "%s", v);
        else if (!strcmp(a, "--control") && v) control = v;
        else if (!strcmp(a, "--rc-steering-us")) bad = arg_u32(a, v, 2500, &widths[RC_STEERING]);
        else if (!strcmp(a, "--rc-throttle-us")) bad = arg_u32(a, v, 2500, &widths[RC_THROTTLE]);
        else if (!strcmp(a, "--rc-aux-us")) bad = arg_u32(a, v, 2500, &widths[RC_AUX]);
        else if (!strcmp(a, "--battery-mv")) bad = arg_u32(a, v, 60000, &battery_mv);
        else if (!strcmp(a, "--duration-ms")) bad = arg_u32(a, v, 86400000, &duration_ms);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else {
            fprintf(stderr, "rc-firmware-sim: unknown or incomplete argument '%s'\n", a);
            usage();
            return 2;
        }
        if (bad)
            return 2;
        i++;
    }
    if (!pty) {
        fprintf(stderr, "rc-firmware-sim: --pty PATH is needed (where to put the board's serial port)\n");
        usage();
        return 2;
    }
    for (int ch = 0; ch < RC_COUNT; ch++) {
        if (widths[ch] && widths[ch] < 500) {
            fprintf(stderr, "rc-firmware-sim: receiver pulses are 0 (silent) or 500..2500 us\n");
            return 2;
        }
    }

    /* The JSON stream gets its own copy of stdout; fd 1 becomes stderr, so that nothing simavr
     * might print on its own can ever get into the stream. */
    s->out = fdopen(dup(STDOUT_FILENO), "w");
    if (!s->out || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        fprintf(stderr, "rc-firmware-sim: cannot set up stdout: %s\n", strerror(errno));
        return 2;
    }
    avr_global_logger_set(log_to_stderr);
    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (access(elf_path, R_OK) != 0 || elf_read_firmware(elf_path, &fw) != 0) {
        fprintf(stderr, "rc-firmware-sim: cannot read the firmware %s: build it with `make -C jetson/firmware sim`\n", elf_path);
        return 2;
    }
    s->avr = avr_make_mcu_by_name("atmega328p");
    if (!s->avr) {
        fprintf(stderr, "rc-firmware-sim: this simavr has no atmega328p core\n");
        return 2;
    }
    avr_init(s->avr);
    s->avr->log = LOG_ERROR;
    fw.frequency = SIM_F_CPU;
    fw.vcc = fw.avcc = fw.aref = 5000; /* an Uno: 5 V, ADC referenced to AVcc */
    avr_load_firmware(s->avr, &fw);
    s->avr->frequency = SIM_F_CPU;
    s->master_fd = -1;
    if (serial_open(s, pty) < 0)
        return 2;
    control_in_t ctl = {.fd = -1, .keep_open = -1};
    if (control && control_open(&ctl, control) < 0) {
        serial_close(s);
        return 2;
    }
    s->chip_reset = s->avr->reset;
    s->avr->reset = on_chip_reset;
    outputs_init(s);
    receiver_init(s, widths, battery_mv);
    serial_init(s);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTTIN, SIG_IGN); /* `--control -` in a background job: reads fail instead of stopping us */

    emit(s, "{\"t_us\": 0, \"event\": \"start\", \"mcu\": \"atmega328p\", \"f_cpu\": %u, \"elf\": \"%s\", \"pty\": \"%s\"}",
         SIM_F_CPU, elf_path, pty);
    emit(s, "{\"t_us\": 0, \"event\": \"reset\", \"cause\": \"power-on\"}");
    s->cycle0 = s->avr->cycle;
    s->wall0_ns = mono_ns();
    int status = 0;
    avr_cycle_count_t end = duration_ms ? s->cycle0 + (avr_cycle_count_t)duration_ms * 1000u * CYCLES_PER_US : 0;
    while (!s->stop && !stop_signal) {
        avr_cycle_count_t target = s->avr->cycle + SLICE_CYCLES;
        while (s->avr->cycle < target) {
            if (s->hang_armed)
                hang_if_at_wdr(s);
            int state = avr_run(s->avr);
            if (s->reset_pending)
                after_reset(s);
            if (state == cpu_Done || state == cpu_Crashed) {
                emit(s, "{\"t_us\": %llu, \"event\": \"crash\", \"pc\": %u, \"state\": %d}",
                     (unsigned long long)now_us(s), (unsigned)s->avr->pc, state);
                status = 1;
                goto out;
            }
        }
        serial_service(s);
        control_poll(s, &ctl);
        if (end && s->avr->cycle >= end)
            break;
        /* pace: simulated time may not run ahead of the wall clock */
        uint64_t sim_ns = (s->avr->cycle - s->cycle0) * 1000ull / CYCLES_PER_US;
        uint64_t wall_ns = mono_ns() - s->wall0_ns;
        if (sim_ns > wall_ns) {
            uint64_t due = s->wall0_ns + sim_ns;
            struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else {
            uint64_t lag_us = (wall_ns - sim_ns) / 1000;
            s->late_slices += lag_us > 1000;
            if (lag_us > s->max_lag_us)
                s->max_lag_us = lag_us;
        }
        s->slices++;
    }
out:
    emit(s, "{\"t_us\": %llu, \"event\": \"exit\", \"max_lag_us\": %llu, \"late_pct\": %.2f, \"resets\": %u, \"rx_bytes\": %llu, "
            "\"rx_dropped\": %llu, \"tx_bytes\": %llu, \"tx_dropped\": %llu}",
         (unsigned long long)now_us(s), (unsigned long long)s->max_lag_us,
         s->slices ? 100.0 * (double)s->late_slices / (double)s->slices : 0.0, s->resets, (unsigned long long)s->rx_bytes,
         (unsigned long long)s->rx_dropped, (unsigned long long)s->tx_bytes, (unsigned long long)s->tx_dropped);
    serial_close(s);
    if (ctl.fifo[0])
        unlink(ctl.fifo);
    return status;
}
