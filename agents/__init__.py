"""The runners: they move data between the ports (agents/ports.py) and the pure core, and
hold no maths. app/faust/ wires them into Faust."""
