"""Face analysis: detect, align, judge, track and aggregate.

Import the pipeline from ``expression_portrait.vision.pipeline``; this package
file stays empty so that importing the result types loads no model runtime.
"""
