/*
 * The RC receiver on D2 (PD2/INT0, steering), D3 (PD3/INT1, throttle) and D8 (PB0/PCINT0, AUX),
 * and the battery on ADC0.
 *
 * Each channel sends one pulse per 20 ms frame, the channels staggered by 2.5 ms as a receiver's
 * decoded PPM stream is; a width of 0 is a silent channel (the pin stays low). A new width
 * applies from the next frame.
 *
 * simavr 1.6 polls INT0/INT1 every cycle while a pin is low in level-trigger mode (ISC = 0, the
 * reset value), and keeps raising the interrupt after the firmware has switched the pin to
 * any-change mode: an interrupt storm a real chip does not have. The poll ("strict level
 * triggering") is turned off here, after every reset too, since simavr turns it back on.
 *
 * The battery pin gets the pack voltage through the firmware's
 * 10 k / 3.3 k divider, with AVcc = 5 V as on an Uno.
 */
#include <sim_cycle_timers.h>
#include <sim_io.h>
#include <avr_adc.h>
#include <avr_extint.h>
#include <avr_ioport.h>

#include "sim.h"

#define RC_FRAME_US 20000u
#define DIVIDER_NUM 33u /* 3.3 k of 13.3 k */
#define DIVIDER_DEN 133u

static avr_cycle_count_t rc_edge(avr_t *avr, avr_cycle_count_t when, void *param)
{
    rc_channel_t *c = (rc_channel_t *)param;
    if (c->high) {
        c->high = 0;
        avr_raise_irq(c->pin, 0);
        c->frame_start += (avr_cycle_count_t)RC_FRAME_US * CYCLES_PER_US;
        return c->frame_start;
    }
    if (c->width_us) {
        c->high = 1;
        avr_raise_irq(c->pin, 1);
        return when + (avr_cycle_count_t)c->width_us * CYCLES_PER_US;
    }
    (void)avr;
    c->frame_start += (avr_cycle_count_t)RC_FRAME_US * CYCLES_PER_US; /* silent: look again next frame */
    return c->frame_start;
}

static void no_level_poll(sim_t *s)
{
    avr_extint_set_strict_lvl_trig(s->avr, 0, 0);
    avr_extint_set_strict_lvl_trig(s->avr, 1, 0);
}

static void rc_start(sim_t *s, rc_channel_t *c)
{
    if (c->high)
        avr_raise_irq(c->pin, 0);
    c->high = 0;
    c->frame_start = s->avr->cycle + (avr_cycle_count_t)c->offset_us * CYCLES_PER_US;
    avr_cycle_timer_register(s->avr, c->frame_start - s->avr->cycle, rc_edge, c);
}

void receiver_init(sim_t *s, const uint32_t widths_us[RC_COUNT], uint32_t battery_mv)
{
    static const char port[RC_COUNT] = {'D', 'D', 'B'};
    static const int bit[RC_COUNT] = {2, 3, 0};
    no_level_poll(s);
    for (int i = 0; i < RC_COUNT; i++) {
        rc_channel_t *c = &s->rc[i];
        c->sim = s;
        c->ch = i;
        c->pin = avr_io_getirq(s->avr, AVR_IOCTL_IOPORT_GETIRQ(port[i]), bit[i]);
        c->width_us = widths_us[i];
        c->offset_us = 1000u + 2500u * (uint32_t)i;
        rc_start(s, c);
    }
    s->adc0 = avr_io_getirq(s->avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0);
    battery_set(s, battery_mv);
}

/* simavr drops every cycle timer on a reset; the receiver is a separate device and keeps going. */
void receiver_on_reset(sim_t *s)
{
    no_level_poll(s);
    for (int i = 0; i < RC_COUNT; i++)
        rc_start(s, &s->rc[i]);
}

void receiver_set(sim_t *s, int ch, uint32_t width_us) { s->rc[ch].width_us = width_us; }

void battery_set(sim_t *s, uint32_t battery_mv)
{
    s->battery_mv = battery_mv;
    avr_raise_irq(s->adc0, battery_mv * DIVIDER_NUM / DIVIDER_DEN);
}
