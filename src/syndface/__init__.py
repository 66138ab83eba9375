"""syndface: facial diagnosis of genetic syndromes across the lifespan.

A reproducible workflow after Duong et al. 2022 (Front. Genet. 13:864092). One
subpackage per stage; shared pieces (taxonomy, atomic I/O, seeding, logging, config
checks) are small core modules beside them.
"""

__version__ = "0.1.0"
