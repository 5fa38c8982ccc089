/*
 * Runs rc_link.c on a PC for tests/jetson/test_firmware.py. Reads commands from stdin, one per line:
 *   decode HEX...   parse with every type accepted; one canonical line per frame, then "end"
 *   stream HEX...   the same as the car's parser (host->car types only)
 *   status SEQ VERSION MODE FLAGS LAST_SEQ LAST_TAG STEERING THROTTLE BATTERY_MV RX_ERRORS -> frame hex
 *   crc TEXT        CRC-16 of TEXT, e.g. "crc 123456789" -> 0x906E
 *   reset | rx T_MS HEX... | rc STEERING THROTTLE | manual T_MS 0|1 | state T_MS  (car scenarios)
 * The canonical lines are those of tests/runtime/link/vectors.py, e.g. "DRIVE seq=11 steering=-300
 * throttle=450 tag=1001"; a CRC-valid frame with a bad payload prints "PAYLOAD_ERROR".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_link.h"

static int16_t s16(const uint8_t *p) { return (int16_t)(uint16_t)(p[0] | (p[1] << 8)); }
static unsigned u16(const uint8_t *p) { return (unsigned)(p[0] | (p[1] << 8)); }
static unsigned long u32(const uint8_t *p) { return (unsigned long)u16(p) | ((unsigned long)u16(p + 2) << 16); }
static int axis_ok(int v) { return v >= -RL_AXIS_MAX && v <= RL_AXIS_MAX; }

static void print_frame(const rl_frame *f, void *ctx)
{
    (void)ctx;
    const uint8_t *p = f->payload;
    switch (f->type) {
    case RL_ARM:
        if (p[0] != RL_PROTOCOL_VERSION) break;
        printf("ARM seq=%u version=%u\n", f->seq, p[0]);
        return;
    case RL_DRIVE:
        if (!axis_ok(s16(p)) || !axis_ok(s16(p + 2))) break;
        printf("DRIVE seq=%u steering=%d throttle=%d tag=%lu\n", f->seq, s16(p), s16(p + 2), u32(p + 4));
        return;
    case RL_NEUTRAL:
        if (p[0] & ~RL_NEUTRAL_FLAG_DISARM) break;
        printf("NEUTRAL seq=%u flags=%u\n", f->seq, p[0]);
        return;
    case RL_HEARTBEAT:
        printf("HEARTBEAT seq=%u\n", f->seq);
        return;
    case RL_STATUS:
        /* what a host must check before acting on a STATUS (docs/protocol.md, STATUS validation) */
        if (p[0] != RL_PROTOCOL_VERSION || p[1] > 1 || (p[2] & ~7) || !axis_ok(s16(p + 9)) || !axis_ok(s16(p + 11)))
            break;
        printf("STATUS seq=%u version=%u mode=%u flags=%u last_seq=%u last_tag=%lu steering=%d throttle=%d "
               "battery_mv=%u rx_errors=%u\n",
               f->seq, p[0], p[1], p[2], u16(p + 3), u32(p + 5), s16(p + 9), s16(p + 11), u16(p + 13), u16(p + 15));
        return;
    }
    printf("PAYLOAD_ERROR\n");
}

/* Parses hex pairs separated by spaces from s into out; returns the byte count. */
static size_t parse_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        while (*s == ' ') s++;
        if (!s[0] || !s[1] || s[0] == '\n') break;
        char pair[3] = {s[0], s[1], 0};
        out[n++] = (uint8_t)strtoul(pair, NULL, 16);
        s += 2;
    }
    return n;
}

static void ignore_frame(const uint8_t *frame, uint8_t len, void *ctx) { (void)frame; (void)len; (void)ctx; }

int main(void)
{
    static char line[65536];
    static uint8_t bytes[32768];
    rl_car car;
    rl_car_init(&car, ignore_frame, NULL);
    while (fgets(line, sizeof line, stdin)) {
        char *arg = strchr(line, ' ');
        if (arg) *arg++ = 0; else { arg = line + strlen(line); line[strcspn(line, "\n")] = 0; }
        if (!strcmp(line, "decode") || !strcmp(line, "stream")) {
            rl_parser p;
            rl_parser_init(&p, strcmp(line, "decode") ? 0 : 2, print_frame, NULL);
            size_t n = parse_hex(arg, bytes, sizeof bytes);
            for (size_t i = 0; i < n; i++) rl_parser_byte(&p, bytes[i], 0);
            rl_parser_expire(&p, 1000);
            printf("counters bad_header=%lu crc_errors=%lu wrong_direction=%lu\nend\n",
                   (unsigned long)p.bad_header, (unsigned long)p.crc_errors, (unsigned long)p.wrong_direction);
        } else if (!strcmp(line, "status")) {
            unsigned long v[11];
            char *q = arg;
            for (int i = 0; i < 11; i++) v[i] = (unsigned long)strtol(q, &q, 10);
            rl_status s = {(uint8_t)v[1], (uint8_t)v[2], (uint8_t)v[3], (uint16_t)v[4], (uint32_t)v[5],
                           (int16_t)(long)v[6], (int16_t)(long)v[7], (uint16_t)v[8], (uint16_t)v[9]};
            uint8_t payload[RL_MAX_PAYLOAD], frame[RL_MAX_FRAME];
            rl_status_pack(&s, payload);
            uint8_t n = rl_encode_frame(RL_STATUS, (uint16_t)v[0], payload, RL_MAX_PAYLOAD, frame);
            for (uint8_t i = 0; i < n; i++) printf(i ? " %02X" : "%02X", frame[i]);
            printf("\n");
        } else if (!strcmp(line, "crc")) {
            arg[strcspn(arg, "\n")] = 0;
            printf("0x%04X\n", rl_crc16((const uint8_t *)arg, (uint8_t)strlen(arg)));
        } else if (!strcmp(line, "reset")) {
            rl_car_init(&car, ignore_frame, NULL);
        } else if (!strcmp(line, "rx")) {
            char *q;
            uint32_t t = (uint32_t)strtoul(arg, &q, 10);
            size_t n = parse_hex(q, bytes, sizeof bytes);
            rl_car_tick(&car, t);
            for (size_t i = 0; i < n; i++) rl_car_rx(&car, bytes[i], t);
        } else if (!strcmp(line, "rc")) {
            char *q;
            long s = strtol(arg, &q, 10), th = strtol(q, NULL, 10);
            rl_car_set_rc(&car, (int16_t)s, (int16_t)th);
        } else if (!strcmp(line, "manual")) {
            char *q;
            uint32_t t = (uint32_t)strtoul(arg, &q, 10);
            rl_car_set_manual(&car, (uint8_t)strtoul(q, NULL, 10), t);
        } else if (!strcmp(line, "state")) {
            rl_car_tick(&car, (uint32_t)strtoul(arg, NULL, 10));
            printf("state=%s steering=%d throttle=%d last_seq=%u last_tag=%lu rx_errors=%u\n", rl_car_state(&car),
                   car.steering, car.throttle, car.last_seq, (unsigned long)car.last_tag, rl_car_rx_errors(&car));
        } else if (line[0] && line[0] != '\n') {
            printf("unknown command %s\n", line);
        }
        fflush(stdout);
    }
    return 0;
}
