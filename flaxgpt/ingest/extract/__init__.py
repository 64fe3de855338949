"""Extractors: one small module per family of formats, each turning user files into ``Document``s."""
