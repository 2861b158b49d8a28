/* Hook calls, private side: what the engine tells the calls when the generation changes. */
#ifndef MB_POLICY_CALL_H
#define MB_POLICY_CALL_H

/* Forget the limits cached for the generation that ends. */
void policy_call_forget_limits(void);

#endif
