/*
 * RC car serial protocol v2 (docs/protocol.md): CRC, resynchronising frame parser and the car's
 * state machine. Portable C99 without hardware access: main.c runs it on an ATmega328P, and
 * host_harness.c runs the very same code on a PC against docs/protocol_vectors.json.
 * Times are milliseconds from a free-running uint32 clock (wrap-safe arithmetic).
 */
#ifndef RC_LINK_H
#define RC_LINK_H

#include <stdint.h>

#define RL_PROTOCOL_VERSION 2
#define RL_SYNC 0xA5
#define RL_HEADER_LEN 5
#define RL_CRC_LEN 2
#define RL_MAX_PAYLOAD 17
#define RL_MAX_FRAME (RL_HEADER_LEN + RL_MAX_PAYLOAD + RL_CRC_LEN)
#define RL_AXIS_MAX 1000

#define RL_FAILSAFE_MS 250u
#define RL_DISARM_MS 1000u
#define RL_STATUS_PERIOD_MS 50u
#define RL_GAP_MS 20u
/* Burst rule: a DRIVE takes effect RL_BURST_MS after it arrived unless a newer DRIVE or a NEUTRAL
 * came first (a backlog released at once is never replayed in order). */
#define RL_BURST_MS 4u

enum rl_type {
    RL_ARM = 0x01,
    RL_DRIVE = 0x02,
    RL_NEUTRAL = 0x03,
    RL_HEARTBEAT = 0x04,
    RL_STATUS = 0x81
};

#define RL_NEUTRAL_FLAG_DISARM 0x01
#define RL_STATUS_FLAG_ARMED 0x01
#define RL_STATUS_FLAG_FAILSAFE 0x02
#define RL_STATUS_FLAG_RC_PRESENT 0x04

/* CRC-16/IBM-SDLC: "123456789" -> 0x906E */
uint16_t rl_crc16(const uint8_t *data, uint8_t len);
/* Fixed payload length of a message type, or -1 for an unknown type. */
int8_t rl_payload_len(uint8_t type);

/* A CRC-valid frame; payload points into the parser's buffer (valid during the callback). */
typedef struct {
    uint8_t type;
    uint16_t seq;
    uint8_t len;
    const uint8_t *payload;
} rl_frame;

typedef void (*rl_frame_fn)(const rl_frame *frame, void *ctx);

typedef struct {
    uint8_t buf[RL_MAX_FRAME];
    uint8_t n;
    uint8_t accept_car_to_host; /* 0: take host->car types (a car), 1: car->host (a host), 2: all */
    uint32_t last_rx_ms;
    uint32_t frames, bad_header, crc_errors, wrong_direction, garbage_bytes, stale_partials;
    rl_frame_fn on_frame;
    void *ctx;
} rl_parser;

void rl_parser_init(rl_parser *p, uint8_t accept, rl_frame_fn on_frame, void *ctx);
void rl_parser_byte(rl_parser *p, uint8_t byte, uint32_t now_ms);
/* Gap rule: abandon a partial frame silent for more than RL_GAP_MS. */
void rl_parser_expire(rl_parser *p, uint32_t now_ms);
uint32_t rl_parser_rejected(const rl_parser *p);

/* Writes one frame into out (at least RL_MAX_FRAME bytes); returns its length. */
uint8_t rl_encode_frame(uint8_t type, uint16_t seq, const uint8_t *payload, uint8_t len, uint8_t *out);

typedef struct {
    uint8_t version, mode, flags;
    uint16_t last_seq;
    uint32_t last_tag;
    int16_t steering, throttle;
    uint16_t battery_mv, rx_errors;
} rl_status;

void rl_status_pack(const rl_status *s, uint8_t out[RL_MAX_PAYLOAD]);

typedef void (*rl_send_fn)(const uint8_t *frame, uint8_t len, void *ctx);

typedef struct {
    rl_parser parser;
    uint8_t armed, failsafe, manual, rc_present;
    int16_t steering, throttle; /* outputs, -1000..1000 */
    int16_t rc_steering, rc_throttle;
    uint16_t last_seq, tx_seq, battery_mv;
    uint32_t last_tag, payload_errors;
    uint8_t driving, have_frame, have_status;
    uint8_t have_pending; /* a DRIVE waiting for RL_BURST_MS (burst rule) */
    int16_t pending_steering, pending_throttle;
    uint32_t pending_ms; /* when it arrived */
    uint32_t last_drive_ms, last_frame_ms, next_status_ms;
    uint32_t now_ms; /* time of the call being processed */
    rl_send_fn send;
    void *send_ctx;
} rl_car;

void rl_car_init(rl_car *car, rl_send_fn send, void *send_ctx);
void rl_car_rx(rl_car *car, uint8_t byte, uint32_t now_ms);
void rl_car_tick(rl_car *car, uint32_t now_ms);
void rl_car_set_manual(rl_car *car, uint8_t on, uint32_t now_ms);
void rl_car_set_rc(rl_car *car, int16_t steering, int16_t throttle);
uint16_t rl_car_rx_errors(const rl_car *car);
/* "disarmed", "armed", "failsafe" or "manual" */
const char *rl_car_state(const rl_car *car);

#endif
