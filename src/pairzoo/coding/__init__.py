"""Update coding: codecs, compressed variants, QP sweeps, coded samples, framework-free scoring."""
