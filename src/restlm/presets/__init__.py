"""What the scripts in benchmarks/ run: each script is argparse and a call into one module here.

    mrpc_grid            benchmarks/mrpc_grid.py: the Table 2 grid on MRPC over seeds, its summary and markdown
    mrpc_ablation        benchmarks/mrpc_ablation.py: ReST variants from one fine-tuned MRPC checkpoint
    multi30k             benchmarks/multi30k_smollm2.py: the Table 1 rows on Multi30k, other losses, sampling speed
    reward_models        benchmarks/reward_models.py: Bradley-Terry reward models, probes and ensembles on HH-RLHF
    reward_model_search  benchmarks/reward_model_search.py: reward models chosen on a validation split
"""
