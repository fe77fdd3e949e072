"""One module per command: each wires its stage and returns a small result whose ``summary()``
the CLI echoes; :mod:`pneumo.stages.demo` composes the others into the whole cycle."""
