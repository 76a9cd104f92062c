"""Prepaid top-ups: a customer buys balance (money, or a traffic pack priced at its plan)
with an invoice issued at once; paying it credits the balance (and, for a pack on an IPFoxy
sub-account, allocates the traffic upstream). See `services` for the rules."""
