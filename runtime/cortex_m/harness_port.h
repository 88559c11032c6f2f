/*
 * What the tinycc harness (runtime/harness/main.c) needs from the bare-metal
 * Cortex-M port (runtime/cortex_m/startup.c).
 */
#ifndef TINYCC_HARNESS_PORT_H
#define TINYCC_HARNESS_PORT_H

#include <stdint.h>

/* Start SysTick free-running from the processor clock, 24-bit reload, with
 * an interrupt on every wrap so that the count extends to 64 bits. */
void port_counter_init(void);

/* SysTick ticks since port_counter_init().  Under QEMU with -icount shift=0
 * one tick is (1e9 / SysTick clock in Hz) guest instructions. */
uint64_t port_ticks(void);

/* Lowest address the stack may grow down to (the current heap end plus a
 * margin), for stack painting. */
uintptr_t port_stack_limit(void);

/* The processor's stack pointer now. */
uintptr_t port_stack_pointer(void);

#endif
