"""Test fakes of outside parts (a protocol-faithful pigpiod) that tests and benches start on
loopback; nothing in the product imports them."""
