/*
 * rc-firmware-sim: the reference firmware's own .elf on a simulated ATmega328P (simavr 1.6), as a
 * board on the bench. See README.md in this directory for the command line and the output lines.
 *
 * Time: everything is in simulated CPU cycles (16 MHz, 16 cycles per microsecond); the main loop
 * paces them to the wall clock so the host's real-time traffic means what it would on a board.
 */
#ifndef RC_SIM_H
#define RC_SIM_H

#include <stdint.h>
#include <stdio.h>

#include <sim_avr.h>
#include <sim_irq.h>

#define SIM_F_CPU 16000000u
#define CYCLES_PER_US 16u

/* ATmega328P data-space addresses of the registers the harness watches (datasheet, 30.) */
#define R_PINB 0x23
#define R_DDRB 0x24
#define R_PORTB 0x25
#define R_MCUSR 0x54
#define R_TCCR1A 0x80
#define R_TCCR1B 0x81
#define R_ICR1L 0x86
#define R_ICR1H 0x87
#define R_OCR1AL 0x88
#define R_OCR1AH 0x89
#define R_OCR1BL 0x8A
#define R_OCR1BH 0x8B
#define R_UCSR0A 0xC0
#define R_UCSR0B 0xC1
#define R_UCSR0C 0xC2
#define R_UBRR0L 0xC4
#define R_UBRR0H 0xC5
#define MCUSR_WDRF 3
#define UCSR0B_RXEN0 4

enum { OUT_SERVO, OUT_ESC, OUT_COUNT };
enum { HANG_LOOP = 1, HANG_CLI = 2 }; /* main loop stuck; stuck with interrupts off too */
enum { RC_STEERING, RC_THROTTLE, RC_AUX, RC_COUNT };

typedef struct sim sim_t;

/* One output-compare channel of Timer1 as the pin drives it (see outputs.c). */
typedef struct {
    sim_t *sim;
    const char *name;
    uint16_t ocr_lo;          /* OCR1xL (OCR1xH follows it) */
    uint8_t com_shift;        /* COM1x1:0 position in TCCR1A */
    uint8_t ddr_bit;          /* PB1 / PB2 */
    uint32_t width_cycles;    /* pulse reported last (0 = pin idle low) */
    uint32_t ocr_seen;        /* OCR1x the firmware wrote last (0xFFFFFFFF: none since reset) */
    int reported;
    avr_cycle_count_t bottom, enabled_since; /* this period's BOTTOM; pin enabled since (or never) */
    uint32_t period;
} oc_channel_t;

typedef struct {
    sim_t *sim;
    int ch;
    avr_irq_t *pin;
    uint32_t width_us; /* 0 = receiver silent on this channel */
    uint32_t offset_us;
    int high;
    avr_cycle_count_t frame_start;
} rc_channel_t;

struct sim {
    avr_t *avr;
    FILE *out;
    /* pacing */
    uint64_t wall0_ns;
    avr_cycle_count_t cycle0;
    uint64_t max_lag_us, slices, late_slices; /* late: simulated time > 1 ms behind the wall clock */
    /* Timer1 outputs and the LED */
    oc_channel_t oc[OUT_COUNT];
    uint8_t t1_cs, t1_wgm;
    int led;
    /* RC receiver and battery */
    rc_channel_t rc[RC_COUNT];
    uint32_t battery_mv;
    avr_irq_t *adc0;
    /* serial bridge */
    struct avr_uart_t *uart;
    int master_fd;
    char pty_link[512], pty_name[256];
    uint8_t rxq[8192];
    uint32_t rx_head, rx_tail, rx_burst; /* ring indices; rx_burst: first byte of this burst */
    int rx_in_flight, rx_pump_on;
    avr_cycle_count_t rx_burst_t0;
    uint64_t rx_bytes, rx_dropped, tx_bytes, tx_dropped;
    uint8_t txq[8192];
    uint32_t tx_head, tx_tail;
    /* faults and resets */
    int hang_armed; /* 0, HANG_LOOP or HANG_CLI: hang at the next `wdr` */
    avr_flashaddr_t hang_pc;
    uint16_t hang_saved[2]; /* the two flash words the hang replaced */
    int hung;
    int reset_pending;
    void (*chip_reset)(struct avr_t *avr);
    uint32_t resets;
    int stop;
};

/* Output lines: one JSON object per line on sim->out, flushed at once. */
void emit(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t now_us(const sim_t *s);

void outputs_init(sim_t *s);
void outputs_on_reset(sim_t *s);

void receiver_init(sim_t *s, const uint32_t widths_us[RC_COUNT], uint32_t battery_mv);
void receiver_on_reset(sim_t *s);
void receiver_set(sim_t *s, int ch, uint32_t width_us);
void battery_set(sim_t *s, uint32_t battery_mv);

int serial_open(sim_t *s, const char *link_path);
void serial_init(sim_t *s);
void serial_on_reset(sim_t *s);
void serial_service(sim_t *s); /* move bytes between the pty and the simulated UART */
void serial_close(sim_t *s);

/* Control commands (one per line); returns 0, or -1 for a line it does not understand. */
int control_line(sim_t *s, char *line);

#endif
