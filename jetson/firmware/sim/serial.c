/*
 * UART0 <-> a pseudo-terminal: the host opens the pty's slave (through the --pty symlink) exactly
 * as it opens /dev/rc-car on the car.
 *
 * Host -> board: bytes are handed to the simulated UART one at a time, the next one only after the
 * firmware has read the previous one out of UDR0, so simavr's receiver never overruns and each
 * byte arrives one byte time after it was handed over. simavr 1.6 counts a parity bit even in 8N1
 * (11 bit times: 93.5 us per byte at UBRR0 = 16 / U2X0); the byte time is set here to the frame
 * the firmware configured (start + data + parity + stop bits: 85 us), for both directions.
 * Bytes that arrive while the firmware has the receiver off (during a reset) are lost, as on the
 * wire. When a burst the host wrote has been taken (read by the firmware, or lost), one line:
 * {"event": "rx", "t0_us": its first byte handed over, "n": bytes in the burst, "bytes": total so far
 * (taken + lost), "hex": the burst}
 * (hex cut at 4096 bytes, then "cut": true), so a test can tell which frame ended when, in simulated time.
 * Board -> host: every byte the firmware writes to UDR0 goes to the pty; while no program has the
 * pty open, they are dropped (nobody is listening on the wire).
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <avr_uart.h>
#include <sim_cycle_timers.h>
#include <sim_io.h>

#include "sim.h"

#define Q_MASK (sizeof(((sim_t *)0)->rxq) - 1)

static avr_irq_t *uart_irq(sim_t *s, int which) { return avr_io_getirq(s->avr, AVR_IOCTL_UART_GETIRQ('0'), which); }

int serial_open(sim_t *s, const char *link_path)
{
    int master, slave;
    char name[256];
    if (openpty(&master, &slave, name, NULL, NULL) < 0) {
        fprintf(stderr, "rc-firmware-sim: cannot make a pseudo-terminal: %s\n", strerror(errno));
        return -1;
    }
    struct termios t;
    if (tcgetattr(slave, &t) == 0) {
        cfmakeraw(&t); /* binary frames: no echo, no line editing, no CR/LF translation */
        tcsetattr(slave, TCSANOW, &t);
    }
    close(slave);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    struct stat st;
    if (lstat(link_path, &st) == 0) {
        if (!S_ISLNK(st.st_mode)) {
            fprintf(stderr, "rc-firmware-sim: --pty %s exists and is not a symlink: pass a free path\n", link_path);
            close(master);
            return -1;
        }
        unlink(link_path);
    }
    if (symlink(name, link_path) < 0) {
        fprintf(stderr, "rc-firmware-sim: cannot link %s -> %s: %s\n", link_path, name, strerror(errno));
        close(master);
        return -1;
    }
    s->master_fd = master;
    snprintf(s->pty_link, sizeof s->pty_link, "%s", link_path);
    snprintf(s->pty_name, sizeof s->pty_name, "%s", name);
    return 0;
}

void serial_close(sim_t *s)
{
    char target[256];
    ssize_t n = readlink(s->pty_link, target, sizeof target - 1);
    if (n > 0) {
        target[n] = 0;
        if (!strcmp(target, s->pty_name)) /* our link only, not one somebody put there since */
            unlink(s->pty_link);
    }
    if (s->master_fd >= 0)
        close(s->master_fd);
    s->master_fd = -1;
}

/* One UART frame in CPU cycles as the firmware configured it (datasheet 20.3, 20.4). */
static uint32_t byte_cycles(const sim_t *s)
{
    static const uint8_t data_bits[8] = {5, 6, 7, 8, 8, 8, 8, 9}; /* UCSZ02:0; 4-6 reserved */
    const uint8_t *d = s->avr->data;
    uint32_t ubrr = (uint32_t)(d[R_UBRR0L] | ((d[R_UBRR0H] & 0x0F) << 8));
    uint32_t bit = (ubrr + 1) * ((d[R_UCSR0A] & (1 << 1)) ? 8u : 16u);
    uint8_t ucsz = (uint8_t)(((d[R_UCSR0C] >> 1) & 3) | ((d[R_UCSR0B] & (1 << 2)) ? 4 : 0));
    uint32_t bits = 1u + data_bits[ucsz] + ((d[R_UCSR0C] & (1 << 5)) ? 1u : 0u) + ((d[R_UCSR0C] & (1 << 3)) ? 2u : 1u);
    return bit * bits;
}

/* After simavr has worked out its byte time (on a UBRR0L write), put in the real one. */
static void uart_setup_written(struct avr_irq_t *irq, uint32_t value, void *param)
{
    sim_t *s = (sim_t *)param;
    (void)irq;
    (void)value;
    if (s->uart)
        s->uart->cycles_per_byte = byte_cycles(s);
}

#define HEX_MAX 4096u

static void burst_done(sim_t *s)
{
    static const char digits[] = "0123456789abcdef";
    char hex[2 * HEX_MAX + 1];
    uint32_t n = s->rx_tail - s->rx_burst, shown = n < HEX_MAX ? n : HEX_MAX;
    for (uint32_t i = 0; i < shown; i++) {
        uint8_t b = s->rxq[(s->rx_burst + i) & Q_MASK];
        hex[2 * i] = digits[b >> 4];
        hex[2 * i + 1] = digits[b & 15];
    }
    hex[2 * shown] = 0;
    s->rx_burst = s->rx_tail;
    emit(s, "{\"t_us\": %llu, \"event\": \"rx\", \"t0_us\": %llu, \"n\": %u, \"bytes\": %llu, \"lost\": %llu, "
            "\"hex\": \"%s\"%s}",
         (unsigned long long)now_us(s), (unsigned long long)(s->rx_burst_t0 / CYCLES_PER_US), n,
         (unsigned long long)(s->rx_bytes + s->rx_dropped),
         (unsigned long long)s->rx_dropped, hex, n > shown ? ", \"cut\": true" : "");
}

static avr_cycle_count_t rx_pump(avr_t *avr, avr_cycle_count_t when, void *param)
{
    sim_t *s = (sim_t *)param;
    if (s->rx_in_flight)
        return when + CYCLES_PER_US; /* the firmware has not read the last byte yet */
    if (s->rx_head == s->rx_tail) {
        s->rx_pump_on = 0;
        return 0;
    }
    if (s->rx_tail == s->rx_burst)
        s->rx_burst_t0 = when; /* the burst's first byte starts down the wire */
    uint8_t b = s->rxq[s->rx_tail++ & Q_MASK];
    if (!(avr->data[R_UCSR0B] & (1 << UCSR0B_RXEN0))) {
        s->rx_dropped++; /* receiver off (reset, setup): the byte passes by unseen */
        if (s->rx_head == s->rx_tail)
            burst_done(s);
        return when + byte_cycles(s);
    }
    s->rx_in_flight = 1;
    avr_raise_irq(uart_irq(s, UART_IRQ_INPUT), b);
    return when + CYCLES_PER_US;
}

/* simavr raises XON when the firmware has emptied the UART's receive FIFO. */
static void rx_taken(struct avr_irq_t *irq, uint32_t value, void *param)
{
    sim_t *s = (sim_t *)param;
    (void)irq;
    if (!value || !s->rx_in_flight)
        return;
    s->rx_in_flight = 0;
    s->rx_bytes++;
    if (s->rx_head == s->rx_tail)
        burst_done(s);
}

static void tx_byte(struct avr_irq_t *irq, uint32_t value, void *param)
{
    sim_t *s = (sim_t *)param;
    (void)irq;
    if (s->tx_head - s->tx_tail > Q_MASK) {
        s->tx_dropped++;
        return;
    }
    s->txq[s->tx_head++ & Q_MASK] = (uint8_t)value;
    s->tx_bytes++;
}

void serial_init(sim_t *s)
{
    uint32_t flags = 0; /* no usleep on status polls (we pace time ourselves), no stdio echo */
    avr_ioctl(s->avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    avr_irq_register_notify(uart_irq(s, UART_IRQ_OUTPUT), tx_byte, s);
    avr_irq_register_notify(uart_irq(s, UART_IRQ_OUT_XON), rx_taken, s);
    for (avr_io_t *io = s->avr->io_port; io; io = io->next)
        if (!strcmp(io->kind, "uart") && ((avr_uart_t *)io)->name == '0')
            s->uart = (avr_uart_t *)io;
    static const uint16_t regs[] = {R_UBRR0L, R_UBRR0H, R_UCSR0A, R_UCSR0B, R_UCSR0C};
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        avr_irq_register_notify(avr_iomem_getirq(s->avr, regs[i], NULL, AVR_IOMEM_IRQ_ALL), uart_setup_written, s);
}

void serial_on_reset(sim_t *s)
{
    if (s->rx_in_flight) { /* it was in the UART's receive buffer: a reset loses it */
        s->rx_dropped++;
        s->rx_in_flight = 0;
        if (s->rx_head == s->rx_tail)
            burst_done(s);
    }
    s->rx_pump_on = 0; /* simavr dropped our cycle timer */
}

void serial_service(sim_t *s)
{
    struct pollfd p = {s->master_fd, POLLIN | POLLOUT, 0};
    if (poll(&p, 1, 0) < 0)
        return;
    if (p.revents & POLLHUP) { /* no program has the pty open: nobody on the wire to hear us */
        s->tx_dropped += s->tx_head - s->tx_tail;
        s->tx_tail = s->tx_head;
    }
    while (s->tx_tail != s->tx_head) {
        uint32_t start = s->tx_tail & Q_MASK, end = s->tx_head & Q_MASK;
        size_t n = end > start ? end - start : sizeof s->txq - start;
        ssize_t w = write(s->master_fd, s->txq + start, n);
        if (w <= 0) {
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                s->tx_dropped += s->tx_head - s->tx_tail;
                s->tx_tail = s->tx_head;
            }
            break; /* the host is not reading: keep the rest for the next round */
        }
        s->tx_tail += (uint32_t)w;
    }
    for (;;) {
        uint32_t free_bytes = (uint32_t)sizeof s->rxq - (s->rx_head - s->rx_burst); /* keep the burst for its hex */
        if (!free_bytes)
            break;
        uint32_t start = s->rx_head & Q_MASK;
        size_t n = sizeof s->rxq - start < free_bytes ? sizeof s->rxq - start : free_bytes;
        /* still read after a hang-up: what the host wrote just before closing (its goodbye
         * NEUTRAL) is there to be taken; then EIO until the next open */
        ssize_t r = read(s->master_fd, s->rxq + start, n);
        if (r <= 0)
            break;
        s->rx_head += (uint32_t)r;
    }
    if (s->rx_head != s->rx_tail && !s->rx_pump_on) {
        s->rx_pump_on = 1;
        avr_cycle_timer_register(s->avr, 1, rx_pump, s);
    }
}
