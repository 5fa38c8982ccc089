/*
 * Reference firmware for an ATmega328P board (Arduino Uno / Nano, 16 MHz), plain avr-libc.
 * Speaks protocol v2 (docs/protocol.md) at 115200 8N1 through rc_link.c, drives the steering
 * servo and the ESC with hardware PWM, and lets an RC transmitter take over. Pins: README.md.
 *
 * Safety: outputs are neutral (1500 us) from the first instruction; nothing moves before ARM;
 * rc_link.c goes neutral 250 ms after the last valid DRIVE and disarms after 1 s of silence; the
 * hardware watchdog resets a hung loop (and a reset is a disarmed, neutral car).
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <util/atomic.h>

#include "rc_link.h"

/* ---- per-car configuration --------------------------------------------------------------- */
#define BAUD 115200UL
#define STEER_CENTER_US 1500
#define STEER_RANGE_US 400 /* +-1000 -> +-400 us around the centre */
#define STEER_REVERSED 0
#define THROTTLE_NEUTRAL_US 1500
#define THROTTLE_FORWARD_US 500 /* +1000 -> +500 us */
#define THROTTLE_REVERSE_US 500 /* -1000 -> -500 us */
#define THROTTLE_LIMIT 1000     /* cap on |throttle| in protocol units (e.g. 400 for a first run) */
#define RC_MANUAL_ON_US 1700    /* AUX channel above this: the transmitter takes over */
#define RC_MANUAL_OFF_US 1300   /* and below this it gives control back (hysteresis) */
#define RC_MIN_US 900
#define RC_MAX_US 2100
#define RC_TIMEOUT_MS 100
#define BATTERY_ENABLED 1
#define BATTERY_DIV_NUM 133UL /* divider (10 k + 3.3 k) / 3.3 k on A0: up to 20 V */
#define BATTERY_DIV_DEN 33UL

#define PWM_TOP 39999u /* Timer1 at 2 MHz (0.5 us ticks): 20 ms servo frame */

/* ---- clock --------------------------------------------------------------------------------- */
static volatile uint32_t ms_clock;
ISR(TIMER0_COMPA_vect) { ms_clock++; }

static uint32_t millis(void)
{
    uint32_t t;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { t = ms_clock; }
    return t;
}

/* ---- UART: interrupt-driven rings ------------------------------------------------------------ */
static volatile uint8_t rx_buf[64], rx_head, rx_tail;
static volatile uint8_t tx_buf[128], tx_head, tx_tail;

ISR(USART_RX_vect)
{
    uint8_t b = UDR0, next = (uint8_t)((rx_head + 1) & 63);
    if (next != rx_tail) { /* full: drop; the CRC catches the hole */
        rx_buf[rx_head] = b;
        rx_head = next;
    }
}

ISR(USART_UDRE_vect)
{
    if (tx_tail == tx_head) {
        UCSR0B &= (uint8_t)~(1 << UDRIE0);
        return;
    }
    UDR0 = tx_buf[tx_tail];
    tx_tail = (uint8_t)((tx_tail + 1) & 127);
}

static void uart_send(const uint8_t *frame, uint8_t len, void *ctx)
{
    (void)ctx;
    uint8_t used;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { used = (uint8_t)((tx_head - tx_tail) & 127); }
    if ((uint8_t)(127 - used) < len)
        return; /* no room: skip this status, the next one follows within 50 ms */
    for (uint8_t i = 0; i < len; i++) {
        tx_buf[tx_head] = frame[i];
        tx_head = (uint8_t)((tx_head + 1) & 127);
    }
    UCSR0B |= (1 << UDRIE0);
}

static int16_t uart_getc(void)
{
    int16_t b = -1;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        if (rx_tail != rx_head) {
            b = rx_buf[rx_tail];
            rx_tail = (uint8_t)((rx_tail + 1) & 63);
        }
    }
    return b;
}

/* ---- RC receiver: pulse widths measured against Timer1 --------------------------------------- */
enum { RC_STEER, RC_THROTTLE, RC_AUX, RC_CHANNELS };
static volatile uint16_t rc_rise[RC_CHANNELS], rc_us[RC_CHANNELS];
static volatile uint32_t rc_seen_ms[RC_CHANNELS];

static void rc_edge(uint8_t ch, uint8_t high)
{
    uint16_t now = TCNT1;
    if (high) {
        rc_rise[ch] = now;
        return;
    }
    uint16_t ticks = (uint16_t)(now >= rc_rise[ch] ? now - rc_rise[ch] : now + PWM_TOP + 1 - rc_rise[ch]);
    uint16_t us = ticks / 2;
    if (us >= RC_MIN_US && us <= RC_MAX_US) {
        rc_us[ch] = us;
        rc_seen_ms[ch] = ms_clock;
    }
}

ISR(INT0_vect) { rc_edge(RC_STEER, PIND & (1 << PD2)); }
ISR(INT1_vect) { rc_edge(RC_THROTTLE, PIND & (1 << PD3)); }
ISR(PCINT0_vect) { rc_edge(RC_AUX, PINB & (1 << PB0)); }

static int16_t rc_axis(uint16_t us)
{
    int32_t v = ((int32_t)us - 1500) * 2; /* 1000..2000 us -> -1000..1000 */
    return (int16_t)(v > RL_AXIS_MAX ? RL_AXIS_MAX : v < -RL_AXIS_MAX ? -RL_AXIS_MAX : v);
}

static void rc_update(rl_car *car, uint32_t now)
{
    uint16_t us[RC_CHANNELS];
    uint32_t seen[RC_CHANNELS];
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        for (uint8_t i = 0; i < RC_CHANNELS; i++) {
            us[i] = rc_us[i];
            seen[i] = rc_seen_ms[i];
        }
    }
    uint8_t fresh = 1;
    for (uint8_t i = 0; i < RC_CHANNELS; i++)
        /* signed: an edge stamped just after `now` was read is fresh, not 49 days old */
        fresh = (uint8_t)(fresh && seen[i] && (int32_t)(now - seen[i]) <= (int32_t)RC_TIMEOUT_MS);
    if (fresh) {
        rl_car_set_rc(car, rc_axis(us[RC_STEER]), rc_axis(us[RC_THROTTLE]));
        if (us[RC_AUX] > RC_MANUAL_ON_US)
            rl_car_set_manual(car, 1, now);
        else if (us[RC_AUX] < RC_MANUAL_OFF_US)
            rl_car_set_manual(car, 0, now);
    } else if (car->rc_present) {
        rl_car_set_rc(car, 0, 0); /* transmitter lost: in manual mode that means neutral */
        car->rc_present = 0;
    }
}

/* ---- outputs ----------------------------------------------------------------------------- */
static void apply_outputs(const rl_car *car)
{
    int32_t s = car->steering, t = car->throttle;
    if (STEER_REVERSED)
        s = -s;
    if (t > THROTTLE_LIMIT)
        t = THROTTLE_LIMIT;
    if (t < -THROTTLE_LIMIT)
        t = -THROTTLE_LIMIT;
    uint16_t steer_us = (uint16_t)(STEER_CENTER_US + s * STEER_RANGE_US / RL_AXIS_MAX);
    uint16_t thr_us = (uint16_t)(THROTTLE_NEUTRAL_US + t * (t > 0 ? THROTTLE_FORWARD_US : THROTTLE_REVERSE_US) / RL_AXIS_MAX);
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        OCR1A = (uint16_t)(steer_us * 2);
        OCR1B = (uint16_t)(thr_us * 2);
    }
    if (car->armed)
        PORTB |= (1 << PB5);
    else
        PORTB &= (uint8_t)~(1 << PB5);
}

static uint16_t battery_mv(void)
{
    if (!BATTERY_ENABLED || (ADCSRA & (1 << ADSC)))
        return 0;
    uint32_t mv = (uint32_t)ADC * 5000UL * BATTERY_DIV_NUM / (1023UL * BATTERY_DIV_DEN);
    ADCSRA |= (1 << ADSC); /* next conversion runs while we work */
    return (uint16_t)(mv > 0xFFFF ? 0xFFFF : mv);
}

/* ---- setup and loop ------------------------------------------------------------------------ */
static void setup(void)
{
    MCUSR = 0;
    wdt_disable();
    /* servo outputs: neutral pulses before the pins are even enabled */
    OCR1A = OCR1B = THROTTLE_NEUTRAL_US * 2;
    ICR1 = PWM_TOP;
    TCCR1A = (1 << COM1A1) | (1 << COM1B1) | (1 << WGM11);
    TCCR1B = (1 << WGM13) | (1 << WGM12) | (1 << CS11); /* fast PWM, TOP = ICR1, clk/8 */
    DDRB |= (1 << PB1) | (1 << PB2) | (1 << PB5);
    /* 1 kHz clock */
    TCCR0A = (1 << WGM01);
    TCCR0B = (1 << CS01) | (1 << CS00);
    OCR0A = 249;
    TIMSK0 = (1 << OCIE0A);
    /* UART 115200 8N1, double speed (UBRR 16: -2.1 %, as every Arduino does) */
    UCSR0A = (1 << U2X0);
    UBRR0 = (uint16_t)(F_CPU / (8UL * BAUD) - 1);
    UCSR0B = (1 << RXEN0) | (1 << TXEN0) | (1 << RXCIE0);
    UCSR0C = (1 << UCSZ01) | (1 << UCSZ00);
    /* RC receiver: D2, D3 on INT0/INT1, D8 on PCINT0, any edge */
    EICRA = (1 << ISC00) | (1 << ISC10);
    EIMSK = (1 << INT0) | (1 << INT1);
    PCICR = (1 << PCIE0);
    PCMSK0 = (1 << PCINT0);
    /* battery on A0, AVcc reference, clk/128 */
    ADMUX = (1 << REFS0);
    ADCSRA = (1 << ADEN) | (1 << ADPS2) | (1 << ADPS1) | (1 << ADPS0) | (1 << ADSC);
    wdt_enable(WDTO_120MS);
    sei();
}

int main(void)
{
    static rl_car car;
    setup();
    rl_car_init(&car, uart_send, 0);
    uint32_t next_battery = 0;
    for (;;) {
        wdt_reset();
        uint32_t now = millis();
        for (int16_t b; (b = uart_getc()) >= 0;)
            rl_car_rx(&car, (uint8_t)b, now);
        rc_update(&car, now);
        if ((int32_t)(now - next_battery) >= 0) {
            uint16_t mv = battery_mv();
            if (mv)
                car.battery_mv = mv;
            next_battery = now + 100;
        }
        rl_car_tick(&car, now);
        apply_outputs(&car);
    }
}
