/*
 * Servo (OC1A, D9) and ESC (OC1B, D10) pulses, and the LED (PB5, D13), as the pins drive them.
 *
 * Timer1's output-compare unit is modelled here from the registers the firmware writes, at the
 * cycles the silicon uses them, because simavr 1.6 does not double-buffer OCR1x in PWM modes (a
 * write applies at once, and an OCR1xH-only change is missed: its pin output would show glitches
 * a real ATmega328P never makes). Datasheet (ATmega328P, 15.9.3 / 15.7.3): in fast PWM mode 14
 * (TOP = ICR1) OC1x is set at BOTTOM and cleared on compare match, so a pulse is (OCR1x + 1)
 * timer ticks; OCR1x is latched at BOTTOM, so a new value shows from the next period on. The pin
 * carries OC1x only while COM1x1:0 = 2 (non-inverting) and its DDRB bit is set: a pulse that
 * starts before the pin is enabled is seen from the enabling write on. The counter's phase is
 * simavr's own: it restarts at BOTTOM when CS1x or WGM1x change, as simavr's Timer1 does.
 */
#include <string.h>

#include <sim_cycle_timers.h>
#include <sim_io.h>

#include "sim.h"

#define NEVER ((avr_cycle_count_t)-1)

static const uint16_t prescaler[8] = {0, 1, 8, 64, 256, 1024, 0, 0}; /* 6, 7: external clock on T1 */

static uint16_t rd16(const sim_t *s, uint16_t lo) { return (uint16_t)(s->avr->data[lo] | (s->avr->data[lo + 1] << 8)); }

static int running(const sim_t *s) { return prescaler[s->t1_cs] && s->t1_wgm == 14; } /* the firmware's mode */

static uint32_t period_cycles(const sim_t *s) { return (uint32_t)prescaler[s->t1_cs] * ((uint32_t)rd16(s, R_ICR1L) + 1); }

static int pin_enabled(const sim_t *s, const oc_channel_t *c)
{
    const uint8_t *d = s->avr->data;
    return ((d[R_TCCR1A] >> c->com_shift) & 3) == 2 && (d[R_DDRB] & (1 << c->ddr_bit));
}

static void report(sim_t *s, oc_channel_t *c, uint32_t width, avr_cycle_count_t when, uint32_t period)
{
    if (c->reported ? width == c->width_cycles : !width)
        return; /* a change, or the first pulse */
    c->reported = 1;
    c->width_cycles = width;
    emit(s, "{\"t_us\": %llu, \"pin\": \"%s\", \"pulse_us\": %.1f, \"period_us\": %.1f}",
         (unsigned long long)(when / CYCLES_PER_US), c->name, (double)width / CYCLES_PER_US,
         (double)period / CYCLES_PER_US);
}

/* Compare match: the pulse that began at BOTTOM (or when the pin was enabled) ends here. */
static avr_cycle_count_t t1_compare(avr_t *avr, avr_cycle_count_t when, void *param)
{
    oc_channel_t *c = (oc_channel_t *)param;
    sim_t *s = c->sim;
    (void)avr;
    if (!pin_enabled(s, c) || c->enabled_since == NEVER) {
        report(s, c, 0, c->bottom, c->period);
        return 0;
    }
    avr_cycle_count_t rise = c->enabled_since > c->bottom ? c->enabled_since : c->bottom;
    report(s, c, (uint32_t)(when - rise), rise, c->period);
    return 0;
}

/* BOTTOM of Timer1: OC1x go high and the OCR1x latch takes the firmware's newest values. */
static avr_cycle_count_t t1_bottom(avr_t *avr, avr_cycle_count_t when, void *param)
{
    sim_t *s = (sim_t *)param;
    uint32_t period = period_cycles(s), top = rd16(s, R_ICR1L);
    for (int i = 0; i < OUT_COUNT; i++) {
        oc_channel_t *c = &s->oc[i];
        uint32_t ocr = rd16(s, c->ocr_lo);
        c->bottom = when;
        c->period = period;
        avr_cycle_timer_cancel(avr, t1_compare, c);
        /* OCR1x >= TOP: no match before the next BOTTOM, the pin stays high the whole period */
        uint32_t width = (uint32_t)prescaler[s->t1_cs] * ((ocr < top ? ocr : top) + 1);
        avr_cycle_count_t match = when + width;
        avr_cycle_timer_register(avr, match > avr->cycle ? match - avr->cycle : 0, t1_compare, c);
    }
    return period ? when + period : 0;
}

static void pins_changed(sim_t *s)
{
    for (int i = 0; i < OUT_COUNT; i++) {
        oc_channel_t *c = &s->oc[i];
        int on = pin_enabled(s, c);
        if (on && c->enabled_since == NEVER)
            c->enabled_since = s->avr->cycle;
        else if (!on)
            c->enabled_since = NEVER;
    }
}

static void t1_control_written(struct avr_irq_t *irq, uint32_t value, void *param)
{
    sim_t *s = (sim_t *)param;
    (void)irq;
    (void)value;
    pins_changed(s);
    const uint8_t *d = s->avr->data;
    uint8_t cs = d[R_TCCR1B] & 7, wgm = (uint8_t)(((d[R_TCCR1B] >> 3) & 3) << 2 | (d[R_TCCR1A] & 3));
    if (cs == s->t1_cs && wgm == s->t1_wgm)
        return;
    s->t1_cs = cs;
    s->t1_wgm = wgm;
    avr_cycle_timer_cancel(s->avr, t1_bottom, s);
    for (int i = 0; i < OUT_COUNT; i++)
        avr_cycle_timer_cancel(s->avr, t1_compare, &s->oc[i]);
    if (running(s)) {
        avr_cycle_timer_register(s->avr, 0, t1_bottom, s); /* the counter restarts at BOTTOM now */
    } else {
        for (int i = 0; i < OUT_COUNT; i++)
            report(s, &s->oc[i], 0, s->avr->cycle, 0);
    }
}

static void ddrb_written(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    pins_changed((sim_t *)param);
}

/* The firmware's command to an output when it changes: {"event": "ocr"} (the pin follows at BOTTOM). */
static void ocr_written(struct avr_irq_t *irq, uint32_t value, void *param)
{
    oc_channel_t *c = (oc_channel_t *)param;
    (void)irq;
    (void)value;
    uint16_t ocr = rd16(c->sim, c->ocr_lo);
    if (ocr == c->ocr_seen)
        return;
    c->ocr_seen = ocr;
    emit(c->sim, "{\"t_us\": %llu, \"event\": \"ocr\", \"pin\": \"%s\", \"ocr\": %u}", (unsigned long long)now_us(c->sim),
         c->name, ocr);
}

static void led_written(struct avr_irq_t *irq, uint32_t value, void *param)
{
    sim_t *s = (sim_t *)param;
    (void)irq;
    (void)value;
    int on = (s->avr->data[R_PORTB] & (1 << 5)) && (s->avr->data[R_DDRB] & (1 << 5));
    if (on == s->led)
        return;
    s->led = on;
    emit(s, "{\"t_us\": %llu, \"pin\": \"led\", \"on\": %s}", (unsigned long long)now_us(s), on ? "true" : "false");
}

void outputs_init(sim_t *s)
{
    static const char *names[OUT_COUNT] = {"servo", "esc"};
    static const uint16_t lo[OUT_COUNT] = {R_OCR1AL, R_OCR1BL};
    for (int i = 0; i < OUT_COUNT; i++) {
        oc_channel_t *c = &s->oc[i];
        memset(c, 0, sizeof *c);
        c->sim = s;
        c->name = names[i];
        c->ocr_lo = lo[i];
        c->com_shift = i == OUT_SERVO ? 6 : 4; /* COM1A1:0 = bits 7:6, COM1B1:0 = bits 5:4 */
        c->ddr_bit = i == OUT_SERVO ? 1 : 2;
        c->ocr_seen = 0xFFFFFFFFu;
        c->enabled_since = NEVER;
        avr_irq_register_notify(avr_iomem_getirq(s->avr, lo[i], NULL, AVR_IOMEM_IRQ_ALL), ocr_written, c);
    }
    avr_irq_register_notify(avr_iomem_getirq(s->avr, R_TCCR1A, NULL, AVR_IOMEM_IRQ_ALL), t1_control_written, s);
    avr_irq_register_notify(avr_iomem_getirq(s->avr, R_TCCR1B, NULL, AVR_IOMEM_IRQ_ALL), t1_control_written, s);
    avr_irq_register_notify(avr_iomem_getirq(s->avr, R_DDRB, NULL, AVR_IOMEM_IRQ_ALL), ddrb_written, s);
    avr_irq_register_notify(avr_iomem_getirq(s->avr, R_PORTB, NULL, AVR_IOMEM_IRQ_ALL), led_written, s);
    avr_irq_register_notify(avr_iomem_getirq(s->avr, R_DDRB, NULL, AVR_IOMEM_IRQ_ALL), led_written, s);
    s->led = 0;
}

/* A reset stops Timer1 and makes every pin an input: no pulses until the firmware starts again. */
void outputs_on_reset(sim_t *s)
{
    s->t1_cs = s->t1_wgm = 0;
    for (int i = 0; i < OUT_COUNT; i++) {
        oc_channel_t *c = &s->oc[i];
        report(s, c, 0, s->avr->cycle, 0);
        c->ocr_seen = 0xFFFFFFFFu;
        c->enabled_since = NEVER;
    }
    if (s->led) {
        s->led = 0;
        emit(s, "{\"t_us\": %llu, \"pin\": \"led\", \"on\": false}", (unsigned long long)now_us(s));
    }
}
