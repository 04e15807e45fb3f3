"""``caplab rowkeys``: Bigtable row-key designs and partitioning schemes, measured on Bigtable
(the emulator, or a real instance) and modelled where the emulator cannot show it (tablets).

workload.py     the transfer stream, projected two rows per transfer
designs.py      the key designs and the scans each needs per query
measure.py      tables, writes, the timed and counted queries
tablets.py      the tablet model (and the replay over real boundaries)
partitioning.py range, hash mod N, consistent hashing
lab.py          one run; report.py its outputs; cli.py the command
"""
