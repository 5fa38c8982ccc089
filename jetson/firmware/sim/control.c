/*
 * Commands that change the bench while the board runs, one per line (--control FIFO, or
 * --control - for stdin):
 *
 *   rc steering|throttle|aux US   receiver pulse width from the next frame (0 = channel silent)
 *   battery MV                    pack voltage on the divider into ADC0
 *   hang [cli]                    the main loop hangs at its next watchdog kick, until a reset
 *                                 (with cli: with interrupts off, so only the hardware runs)
 *   mark                          just echo (a test asks "what is the simulated time now?")
 *   quit                          stop the simulator
 *
 * Each accepted command is echoed as {"event": "control"} with the simulated time it took effect.
 * "hang" patches the firmware's own `wdr` in flash (a self-jump, rjmp .-2) at the moment the core
 * reaches it, so interrupts keep running while the loop is stuck; the original instruction is put
 * back by the next reset (a transient fault, like a stuck bus), so the firmware needs no test-only
 * code path.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define RC_MIN_WIDTH_US 500u
#define RC_MAX_WIDTH_US 2500u

static int parse_u32(const char *text, uint32_t max, uint32_t *out)
{
    char *end;
    if (!text)
        return -1;
    unsigned long v = strtoul(text, &end, 10);
    if (*end || end == text || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int control_line(sim_t *s, char *line)
{
    char *save, *cmd = strtok_r(line, " \t\r", &save);
    char *a = cmd ? strtok_r(NULL, " \t\r", &save) : NULL;
    char *b = a ? strtok_r(NULL, " \t\r", &save) : NULL;
    uint32_t v;
    if (!cmd)
        return 0;
    if (!strcmp(cmd, "rc") && a && !parse_u32(b, RC_MAX_WIDTH_US, &v) && (v == 0 || v >= RC_MIN_WIDTH_US)) {
        static const char *names[RC_COUNT] = {"steering", "throttle", "aux"};
        for (int ch = 0; ch < RC_COUNT; ch++) {
            if (!strcmp(a, names[ch])) {
                receiver_set(s, ch, v);
                emit(s, "{\"t_us\": %llu, \"event\": \"control\", \"rc\": \"%s\", \"us\": %u}",
                     (unsigned long long)now_us(s), a, v);
                return 0;
            }
        }
        return -1;
    }
    if (!strcmp(cmd, "battery") && !parse_u32(a, 60000, &v)) {
        battery_set(s, v);
        emit(s, "{\"t_us\": %llu, \"event\": \"control\", \"battery_mv\": %u}", (unsigned long long)now_us(s), v);
        return 0;
    }
    if (!strcmp(cmd, "hang") && (!a || (!strcmp(a, "cli") && !b))) {
        s->hang_armed = a ? HANG_CLI : HANG_LOOP;
        emit(s, "{\"t_us\": %llu, \"event\": \"control\", \"hang\": \"%s\"}", (unsigned long long)now_us(s),
             a ? "cli" : "loop");
        return 0;
    }
    if (!strcmp(cmd, "mark") && !a) {
        emit(s, "{\"t_us\": %llu, \"event\": \"control\", \"mark\": true}", (unsigned long long)now_us(s));
        return 0;
    }
    if (!strcmp(cmd, "quit") && !a) {
        s->stop = 1;
        return 0;
    }
    return -1;
}
