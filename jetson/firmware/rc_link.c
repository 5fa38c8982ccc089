/* RC car serial protocol v2: see rc_link.h and docs/protocol.md. Mirrors runtime/sim/car.py. */
#include "rc_link.h"

#include <string.h>

uint16_t rl_crc16(const uint8_t *data, uint8_t len)
{
    /* CRC-16/IBM-SDLC (X-25, the HDLC FCS): reflected 0x1021 = 0x8408, init and final xor 0xFFFF.
     * Bitwise: small flash beats a 512-byte table on an ATmega328P. Sent low byte first, so with
     * the UART's LSB-first bits the whole frame is one codeword: every burst <= 16 bits is caught. */
    uint16_t crc = 0xFFFF;
    for (uint8_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (uint8_t b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0x8408) : (uint16_t)(crc >> 1);
    }
    return (uint16_t)~crc;
}

int8_t rl_payload_len(uint8_t type)
{
    switch (type) {
    case RL_ARM: return 1;
    case RL_DRIVE: return 8;
    case RL_NEUTRAL: return 1;
    case RL_HEARTBEAT: return 0;
    case RL_STATUS: return 17;
    default: return -1;
    }
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | ((uint32_t)rd16(p + 2) << 16); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

/* ---------------------------------------------------------------------------------------- */
/* Parser */

void rl_parser_init(rl_parser *p, uint8_t accept, rl_frame_fn on_frame, void *ctx)
{
    memset(p, 0, sizeof *p);
    p->accept_car_to_host = accept;
    p->on_frame = on_frame;
    p->ctx = ctx;
}

static void drop(rl_parser *p, uint8_t k)
{
    memmove(p->buf, p->buf + k, (size_t)(p->n - k));
    p->n = (uint8_t)(p->n - k);
}

static uint8_t accepted(const rl_parser *p, uint8_t type)
{
    if (p->accept_car_to_host == 2)
        return 1;
    return (uint8_t)((type >= 0x80) == (p->accept_car_to_host == 1));
}

/* Same steps as FrameDecoder._parse in runtime/link/protocol.py. */
static void parse(rl_parser *p)
{
    while (p->n) {
        uint8_t start = 0;
        while (start < p->n && p->buf[start] != RL_SYNC)
            start++;
        if (start) {
            p->garbage_bytes += start;
            drop(p, start);
            if (!p->n)
                break;
        }
        if (p->n < 3)
            break;
        int8_t want = rl_payload_len(p->buf[2]);
        if (want < 0 || want != p->buf[1]) {
            p->bad_header++;
            drop(p, 1);
            continue;
        }
        uint8_t len = (uint8_t)want, total = (uint8_t)(len + RL_HEADER_LEN + RL_CRC_LEN);
        if (p->n < total)
            break;
        uint8_t end = (uint8_t)(RL_HEADER_LEN + len);
        if (rl_crc16(p->buf + 1, (uint8_t)(end - 1)) != rd16(p->buf + end)) {
            p->crc_errors++;
            drop(p, 1);
            continue;
        }
        rl_frame f = {p->buf[2], rd16(p->buf + 3), len, p->buf + RL_HEADER_LEN};
        uint8_t frame[RL_MAX_FRAME];
        memcpy(frame, p->buf, total); /* the handler may not see the buffer shift under it */
        f.payload = frame + RL_HEADER_LEN;
        drop(p, total);
        if (!accepted(p, f.type)) {
            p->wrong_direction++;
            continue;
        }
        p->frames++;
        if (p->on_frame)
            p->on_frame(&f, p->ctx);
    }
}

void rl_parser_byte(rl_parser *p, uint8_t byte, uint32_t now_ms)
{
    rl_parser_expire(p, now_ms);
    if (p->n == RL_MAX_FRAME) { /* cannot happen: parse() never holds a full frame */
        p->stale_partials++;
        drop(p, 1);
    }
    p->buf[p->n++] = byte;
    p->last_rx_ms = now_ms;
    parse(p);
}

void rl_parser_expire(rl_parser *p, uint32_t now_ms)
{
    if (!p->n || (uint32_t)(now_ms - p->last_rx_ms) <= RL_GAP_MS)
        return;
    while (p->n) {
        parse(p);
        if (p->n) {
            p->stale_partials++;
            drop(p, 1);
        }
    }
}

uint32_t rl_parser_rejected(const rl_parser *p)
{
    return p->bad_header + p->crc_errors + p->wrong_direction + p->stale_partials;
}

uint8_t rl_encode_frame(uint8_t type, uint16_t seq, const uint8_t *payload, uint8_t len, uint8_t *out)
{
    out[0] = RL_SYNC;
    out[1] = len;
    out[2] = type;
    wr16(out + 3, seq);
    memcpy(out + RL_HEADER_LEN, payload, len);
    wr16(out + RL_HEADER_LEN + len, rl_crc16(out + 1, (uint8_t)(RL_HEADER_LEN - 1 + len)));
    return (uint8_t)(RL_HEADER_LEN + len + RL_CRC_LEN);
}

void rl_status_pack(const rl_status *s, uint8_t out[RL_MAX_PAYLOAD])
{
    out[0] = s->version;
    out[1] = s->mode;
    out[2] = s->flags;
    wr16(out + 3, s->last_seq);
    wr32(out + 5, s->last_tag);
    wr16(out + 9, (uint16_t)s->steering);
    wr16(out + 11, (uint16_t)s->throttle);
    wr16(out + 13, s->battery_mv);
    wr16(out + 15, s->rx_errors);
}

/* ---------------------------------------------------------------------------------------- */
/* Car state machine: same rules, same order as runtime/sim/car.py (CarModel). */

static void send_status(rl_car *c)
{
    rl_status s = {
        RL_PROTOCOL_VERSION,
        c->manual,
        (uint8_t)((c->armed ? RL_STATUS_FLAG_ARMED : 0) | (c->failsafe ? RL_STATUS_FLAG_FAILSAFE : 0) |
                  (c->rc_present ? RL_STATUS_FLAG_RC_PRESENT : 0)),
        c->last_seq, c->last_tag, c->steering, c->throttle, c->battery_mv, rl_car_rx_errors(c),
    };
    uint8_t payload[RL_MAX_PAYLOAD], frame[RL_MAX_FRAME];
    rl_status_pack(&s, payload);
    uint8_t n = rl_encode_frame(RL_STATUS, c->tx_seq++, payload, RL_MAX_PAYLOAD, frame);
    c->next_status_ms = c->now_ms + RL_STATUS_PERIOD_MS;
    c->have_status = 1;
    if (c->send)
        c->send(frame, n, c->send_ctx);
}

static void set_auto_output(rl_car *c, int16_t steering, int16_t throttle)
{
    if (!c->manual) {
        c->steering = steering;
        c->throttle = throttle;
    }
}

static uint8_t axis_ok(int16_t v) { return v >= -RL_AXIS_MAX && v <= RL_AXIS_MAX; }

static void on_frame(const rl_frame *f, void *ctx)
{
    rl_car *c = (rl_car *)ctx;
    const uint8_t *p = f->payload;
    /* payload rules first: a frame that breaks them changes nothing at all */
    switch (f->type) {
    case RL_ARM:
        if (p[0] != RL_PROTOCOL_VERSION) { c->payload_errors++; return; }
        break;
    case RL_DRIVE:
        if (!axis_ok((int16_t)rd16(p)) || !axis_ok((int16_t)rd16(p + 2))) { c->payload_errors++; return; }
        break;
    case RL_NEUTRAL:
        if (p[0] & (uint8_t)~RL_NEUTRAL_FLAG_DISARM) { c->payload_errors++; return; }
        break;
    case RL_HEARTBEAT:
        break;
    default:
        c->payload_errors++;
        return;
    }
    c->last_seq = f->seq;
    c->last_frame_ms = c->now_ms;
    c->have_frame = 1;
    switch (f->type) {
    case RL_DRIVE:
        c->last_tag = rd32(p + 4);
        /* burst rule: it replaces a DRIVE still waiting, and takes effect RL_BURST_MS later (tick) */
        c->have_pending = c->armed;
        c->pending_steering = (int16_t)rd16(p);
        c->pending_throttle = (int16_t)rd16(p + 2);
        c->pending_ms = c->now_ms;
        return; /* no reply: DRIVE comes at up to 100 Hz */
    case RL_ARM:
        c->armed = 1;
        c->failsafe = 0;
        break;
    case RL_NEUTRAL:
        c->have_pending = 0; /* a DRIVE of the same burst never takes effect */
        c->driving = 0;
        c->failsafe = 0;
        set_auto_output(c, 0, 0);
        if (p[0] & RL_NEUTRAL_FLAG_DISARM)
            c->armed = 0;
        break;
    default: /* HEARTBEAT */
        break;
    }
    send_status(c);
}

void rl_car_init(rl_car *c, rl_send_fn send, void *send_ctx)
{
    memset(c, 0, sizeof *c);
    rl_parser_init(&c->parser, 0, on_frame, c);
    c->send = send;
    c->send_ctx = send_ctx;
}

void rl_car_tick(rl_car *c, uint32_t now_ms)
{
    c->now_ms = now_ms;
    rl_parser_expire(&c->parser, now_ms); /* may uncover complete frames behind a stale partial */
    if (c->have_pending && (uint32_t)(now_ms - c->pending_ms) >= RL_BURST_MS) {
        c->have_pending = 0;
        c->last_drive_ms = c->pending_ms; /* the 250 ms count from its arrival */
        c->driving = 1;
        c->failsafe = 0;
        set_auto_output(c, c->pending_steering, c->pending_throttle);
    }
    if (c->armed && c->driving && (uint32_t)(now_ms - c->last_drive_ms) >= RL_FAILSAFE_MS) {
        c->driving = 0;
        c->failsafe = 1;
        set_auto_output(c, 0, 0);
        send_status(c);
    }
    if (c->armed && c->have_frame && (uint32_t)(now_ms - c->last_frame_ms) >= RL_DISARM_MS) {
        c->armed = 0;
        c->have_pending = 0;
        c->driving = 0;
        set_auto_output(c, 0, 0);
        send_status(c);
    }
    if (!c->have_status || (int32_t)(now_ms - c->next_status_ms) >= 0)
        send_status(c);
}

void rl_car_rx(rl_car *c, uint8_t byte, uint32_t now_ms)
{
    rl_car_tick(c, now_ms);
    rl_parser_byte(&c->parser, byte, now_ms);
}

void rl_car_set_manual(rl_car *c, uint8_t on, uint32_t now_ms)
{
    on = on ? 1 : 0;
    if (on == c->manual)
        return;
    c->now_ms = now_ms;
    c->manual = on;
    c->rc_present = (uint8_t)(c->rc_present || on);
    c->have_pending = 0;
    c->driving = 0;
    if (on) {
        c->steering = c->rc_steering;
        c->throttle = c->rc_throttle;
    } else {
        c->steering = c->throttle = 0; /* neutral until the next DRIVE, never an old command */
    }
    send_status(c);
}

void rl_car_set_rc(rl_car *c, int16_t steering, int16_t throttle)
{
    c->rc_steering = steering;
    c->rc_throttle = throttle;
    c->rc_present = 1;
    if (c->manual) {
        c->steering = steering;
        c->throttle = throttle;
    }
}

uint16_t rl_car_rx_errors(const rl_car *c)
{
    uint32_t n = rl_parser_rejected(&c->parser) + c->payload_errors;
    return n > 0xFFFFu ? 0xFFFFu : (uint16_t)n;
}

const char *rl_car_state(const rl_car *c)
{
    if (c->manual)
        return "manual";
    if (!c->armed)
        return "disarmed";
    return c->failsafe ? "failsafe" : "armed";
}
