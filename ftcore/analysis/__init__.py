"""Analyses built on the loop: continual learning (task sequences), weight drift and CKA, probes of
pretrained knowledge, the loss landscape, the LR range test, collator views and the studies behind
the figures. They train or load models, so they import torch."""
