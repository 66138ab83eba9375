"""The embedded demo cohort: synthetic faces with planted disease signals and known truth.

`cohort` samples and writes the cohort (command `make-demo-cohort`), `render` draws a face,
`photo` adds the camera's nuisance, `signals` says which region carries which disease at which
age, and `regions` turns that into masks in the aligned frame (`load_region_masks`).
"""
