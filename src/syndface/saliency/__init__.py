"""Saliency stage: exact batched occlusion maps, per-group composites (Figure 4), the
permutation test between age groups (Figure 5), and the demo's check against planted truth.

Public surface: `occlusion.occlusion_maps`, `occlusion.fold_mean`, `maps.load_maps`,
`permutation.permutation_test`, `truth.truth_table`.
"""
