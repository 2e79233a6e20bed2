"""The experiment config's sections: one dataclass each, every field with a one-line doc.

These classes are the list of every key a config file or `--set` may name; loading and checking
them lives in `loading.py` and `validation.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from restlm.config.grpo import GRPOConfig
from restlm.config.ppo import PPOConfig
from restlm.config.trl import DpoConfig


@dataclass
class DataConfig:
    source: str = "glue_folder"
    """where examples come from: 'glue_folder' (GLUE-form TSVs), 'file' (tsv/csv/jsonl) or 'hub'"""
    root: str | None = None
    """the data folder; default: $RESTLM_DATA, else a shared/data folder above the working dir"""
    path: str = "mrpc"
    """for 'glue_folder': the folder under root"""
    train_split: str = "train"
    """name of the training split"""
    dev_split: str = "dev"
    """name of the held-out split used for selection and the report"""
    train: str | None = None
    """for 'file': the training file"""
    dev: str | None = None
    """for 'file': the held-out file"""
    text_column: str = "sentence1"
    """for 'file': the column holding the (first) sentence"""
    text_pair_column: str | None = "sentence2"
    """for 'file': the column holding the second sentence; None for single sentences"""
    label_column: str = "label"
    """for 'file': the column holding the label"""
    label_set: list[str | int] | None = None
    """for 'file': labels as written in the file, in class-index order; None for integer labels"""
    name: str = "nyu-mll/glue"
    """for 'hub': the dataset id"""
    config: str | None = "mrpc"
    """for 'hub': the dataset config"""
    limit: int | None = None
    """keep only the first `limit` training examples (fast runs)"""
    dev_limit: int | None = None
    """keep only the first `dev_limit` held-out examples (fast runs)"""
    validation_fraction: float | None = None
    """carve this share of the training examples (stratified by label, seeded) into a validation split that
    selects the best step, so that dev is only reported; None: dev selects (needed by `restlm compare`)"""
    validation_seed: int = 0
    """seed of the validation split"""


@dataclass
class ModelConfig:
    name: str = "minilm"
    """short name ('minilm', 'smollm2'), Hugging Face id or local path"""
    num_labels: int = 2
    """number of classes of a classifier policy"""
    max_length: int = 128
    """token limit of an input"""
    lora_rank: int | None = None
    """train LoRA adapters of this rank (peft) instead of every weight; merged on save. None: full fine-tuning"""


@dataclass
class TrainConfig:
    learning_rate: float = 5e-5
    """learning rate of supervised fine-tuning (G0I0)"""
    epochs: int = 3
    """epochs of supervised fine-tuning (G0I0)"""
    batch_size: int = 32
    """global batch size (split across processes)"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    warmup_ratio: float = 0.1
    """fraction of steps with linear warm-up"""
    eval_batch_size: int = 128
    """batch size of inference (evaluation, Grow, rewards)"""
    patience: int | None = None
    """early stopping of fine-tuning (G0I0, compare's start): evaluate dev after each epoch, stop after this many
    epochs without a new best and keep the best epoch's weights (`epochs` is then the most); null: every epoch"""
    dtype: str = "auto"
    """precision of supervised training (fine-tuning, Improve steps): 'bfloat16' autocast (weights and AdamW stay
    float32), 'float32', or 'auto' (bfloat16 on CPUs with AMX or AVX512-BF16 and on CUDA with bf16)"""


@dataclass
class RestConfig:
    grow_steps: int = 1
    """G: number of Grow steps"""
    improve_steps: int = 3
    """I: Improve steps per Grow step"""
    grow_sizes: list[int | None] = field(default_factory=lambda: [100])
    """N: inputs drawn from the training set per Grow step, one trajectory per value (None = all)"""
    samples_per_input: int = 1
    """K: outputs sampled per drawn input"""
    sampling: str = "argmax"
    """'argmax' (the reference) or 'sample' (labels drawn from the softmax at `temperature`)"""
    temperature: float = 1.0
    """softmax temperature when sampling"""
    top_p: float = 1.0
    """nucleus of generative sampling: draw from the smallest token set holding this probability"""
    reward: str = "nll"
    """'nll' (the reference; lower is better), 'correct', 'model:<path>' or 'module:function'"""
    normalise_reward: bool = False
    """map rewards to [0, 1], higher is better (nll -> probability of the label)"""
    threshold: str = "reference"
    """'reference' (mean, then strictly tighter), 'rising' (the `thresholds` list) or 'percentile'"""
    thresholds: list[float] = field(default_factory=lambda: [0.0, 0.7, 0.8, 0.9, 0.95, 0.99])
    """for 'rising': thresholds on normalised rewards; for 'percentile': per-input percentiles"""
    threshold_decay: float = 0.5
    """for 'reference': each Improve step's threshold moves this factor towards the best reward"""
    threshold_per_output: bool = False
    """apply the schedule per output value (per label: class-balanced), so filtering keeps the label mix"""
    original_data: str = "filtered"
    """original training data in the Improve mix: 'filtered' (with the grown data, the reference), 'all', 'none'"""
    improve_learning_rate: float = 2e-5
    """learning rate of the first Improve step of a Grow step"""
    lr_decay: float = 0.5
    """each following Improve step multiplies the learning rate by this"""
    improve_epochs: int = 1
    """epochs per Improve step"""
    loss: str = "bc"
    """offline loss of the Improve step: 'bc' (default), 'gold' or 'bvmpo' (these two weight by the [0, 1] reward)"""
    improve_kl_coef: float = 0.0
    """adds this x KL(policy || the policy ReST started from), summed over each kept output's tokens,
    to every Improve step's loss: holds the policy near its start as PPO's KL penalty does
    (causal and seq2seq policies; 0: off, the paper's ReST)"""
    early_stop_patience: int | None = None
    """stop a trajectory after this many Improve steps without a better selection metric"""
    binary_reward_threshold: float | None = None
    """ReST-EM: the reward becomes 1 at or above this value (after normalisation), else 0"""
    max_kept_per_input: int | None = None
    """ReST-EM: keep at most this many grown samples per input (its best by reward)"""
    restart_from: str = "previous"
    """each Grow step's Improve steps start from the 'previous' policy (ReST) or the trajectory's 'start' (ReST-EM)"""
    human_feedback: str | None = None
    """'rate' or 'rank': after each Grow step write its samples to a file for people to rate and stop;
    `restlm run --resume` then reads the ratings back as the reward of the Improve steps"""
    guard_samples: int = 64
    """grown samples on which each Improve step logs their log-prob gain since Grow and token entropy (0: off)"""
    preset: str | None = None
    """'rest_em' (Singh et al. 2023): binary reward, restart each Grow step, a cap per input, one Improve step"""


@dataclass
class GenerationConfig:
    engine: str = "auto"
    """what generates for causal and seq2seq policies (Grow samples, greedy evaluation, PPO rollouts): 'hf'
    (Hugging Face generate on the policy's model), 'torch' (restlm's decode loop on that model: a prompt's
    prefill shared by its samples, finished rows leave the batch), 'ctranslate2' (a converted copy, kept in
    step with the weights) or 'auto' (hf under 20M parameters; torch in bf16 for a causal policy on a CPU with
    AMX or AVX512-BF16; else ctranslate2 when it can convert the model, else hf)"""
    compute_type: str = "auto"
    """ctranslate2's weights: 'int8', 'int8_float32', 'float32' (CPU), 'int8_float16', 'float16', 'bfloat16'
    (CUDA); 'auto': int8 on CPU, int8_float16 on CUDA"""
    batch_tokens: int | None = None
    """at most this many prompt tokens a batch (sorted by length; torch counts a prompt once per sample); None: the
    engine's own measured default (torch 16384, ctranslate2 4096: each ran slower at the other's)"""
    dtype: str = "float32"
    """the hf and torch engines' weights: 'float32', 'bfloat16' (a copy kept in step with the policy) or 'auto' (bfloat16
    on CPUs with AMX or AVX512-BF16 and on CUDA with bf16)"""


@dataclass
class TranslationConfig:
    source_lang: str = "de"
    """language of the source files (file suffix)"""
    target_lang: str = "en"
    """language of the reference files (file suffix)"""
    test_splits: list[str] = field(default_factory=lambda: ["test_2016_flickr"])
    """Multi30k splits scored at every step for the report (never used for selection)"""
    test_limit: int | None = None
    """score only the first `test_limit` sentences of each test split (fast runs)"""
    out_of_domain: bool = True
    """also score IWSLT14 de-en valid (TED talks), an out-of-domain set"""
    out_of_domain_limit: int | None = None
    """score only the first sentences of the out-of-domain set"""
    system_prompt: str | None = "Translate the user's German text into English. Reply with the translation only."
    """the chat template's system turn (None: the template's own default)"""
    prompt: str = "{text}"
    """the user turn, with {text} the source sentence"""
    max_new_tokens: int = 64
    """token limit of a sampled or decoded translation"""
    heldout_metric: str | None = None
    """the metric the reward does not see, shown beside it: 'bleu' or 'chrf' (None: the other one of the reward)"""


@dataclass
class PromptsConfig:
    train: str | None = None
    """the training prompts: a .jsonl/.csv/.tsv file (or, with `hub`, a split name)"""
    dev: str | None = None
    """prompts whose mean reward selects the best step (a file or a split name)"""
    test: str | None = None
    """held-out prompts, scored for the report only, by the reward and by `gold` (a file or a split name)"""
    hub: str | None = None
    """a Hugging Face dataset id: train/dev/test then name its splits (needs the network or its cache)"""
    hub_config: str | None = None
    """the Hugging Face dataset's config name"""
    format: str | None = None
    """'jsonl', 'csv' or 'tsv' (None: from each file's suffix)"""
    prompt_column: str = "prompt"
    """the column (JSON key) holding the prompt"""
    reference_column: str | None = None
    """the column holding a reference output (fine-tuned on first, scored by chrf/bleu); None: no references"""
    extra_columns: list[str] = field(default_factory=list)
    """more columns kept on each example (`example.meta[name]`) for a `module:function` reward to read"""
    prompt: str = "{text}"
    """the user turn, with {text} the prompt"""
    system_prompt: str | None = None
    """the chat template's system turn (None: the template's own default)"""
    max_new_tokens: int = 64
    """token limit of a sampled or decoded output"""
    gold: str | None = None
    """a second reward spec no method optimises, scored on the test prompts only (None: no gold)"""
    limit: int | None = None
    """keep only the first training prompts (fast runs)"""
    dev_limit: int | None = None
    """keep only the first dev prompts"""
    test_limit: int | None = None
    """keep only the first test prompts"""


@dataclass
class SentimentConfig:
    reward_model: str = "runs/sentiment_reward"
    """the proxy: a sentiment classifier folder, trained there on its half of the UCI sentences when missing"""
    gold_model: str = "runs/sentiment_gold"
    """the gold: a classifier trained on the other half (likewise), which no method sees"""
    classifier_limit: int | None = None
    """train each missing classifier on only its first sentences (fast runs)"""
    prompts: int = 32
    """training prompts (openings of IMDB sentences the proxy may have seen)"""
    dev_prompts: int = 32
    """prompts whose mean proxy selects the best step"""
    heldout_prompts: int = 96
    """held-out prompts: openings of sentences neither classifier saw, then of the gold's only"""
    prompt: str = "Continue this movie review: {text}"
    """the user turn, with {text} the opening"""
    system_prompt: str | None = "You write movie reviews. Reply with the rest of the review only."
    """the chat template's system turn"""
    max_new_tokens: int = 24
    """token limit of a continuation"""


@dataclass
class ArithmeticConfig:
    seed: int = 0
    """seed of the generated problems (each split draws from its own; a text in one split is never in another)"""
    train_size: int = 1000
    """training problems (each with a worked solution ending 'Answer: N', for SFT)"""
    dev_size: int = 100
    """problems whose exact-answer rate selects the best step"""
    test_size: int = 200
    """held-out problems, scored for the report only"""
    levels: list[int] = field(default_factory=lambda: [1, 2])
    """difficulties to draw from, 1 to 4: 1, 2, 3, 4 operations on operands up to 20, 30, 50, 100 (3, 4: parentheses)"""
    word_problems: float = 0.5
    """share of templated word problems ('Ana has 12 apples and buys 7 more...'); the rest are expressions"""
    prompt: str = "{text}\nSolve it step by step. End with the line 'Answer: N', where N is the number."
    """the user turn, with {text} the problem"""
    system_prompt: str | None = None
    """the chat template's system turn (None: the template's own default)"""
    max_new_tokens: int = 64
    """token limit of a sampled or decoded solution"""


@dataclass
class ZeroShotConfig:
    backend: str = "local"
    """'local' (a causal LM through transformers), 'http' (OpenAI-compatible endpoint) or 'none'"""
    model: str = "smollm2"
    """the causal LM (short name, HF id or path) or the endpoint's model name"""
    url: str | None = None
    """for 'http': the endpoint base URL"""
    api_key_env: str = "OPENAI_API_KEY"
    """for 'http': the environment variable holding the key"""
    prompt: str = (
        "Are the following two sentences paraphrases of each other? Sentence 1: {sentence1} "
        "Sentence 2: {sentence2}. Answer with 'Yes' or 'No'."
    )
    """the prompt, with {sentence1} and {sentence2}"""
    max_unparsed: float = 0.5
    """fail the baseline when more than this share of replies is neither yes nor no"""
    timeout_s: float = 60.0
    """for 'http': the whole-request timeout in seconds"""


@dataclass
class BaselinesConfig:
    zero_shot: ZeroShotConfig = field(default_factory=ZeroShotConfig)
    """the zero-shot LLM row of Table 1"""
    untrained_head: bool = True
    """evaluate the pretrained encoder with its new, untrained head"""


@dataclass
class RunConfig:
    seeds: int = 1
    """number of seeds (0 .. seeds-1); every cell runs once per seed"""
    output_dir: str = "runs/mrpc_minilm"
    """the run directory"""
    keep_checkpoints: str = "best"
    """'best' (best per trajectory + what resume needs) or 'all'"""
    checkpoint_dtype: str = "auto"
    """the dtype of the checkpoints a finished seed keeps for reading (each trajectory's kept steps, each compared
    method's chosen step): 'bfloat16' (half the disk), 'float32' (exactly as trained) or 'auto' (bfloat16 for
    causal and seq2seq policies, float32 for classifiers). What resume reads, the fine-tuned start included,
    stays float32"""
    histograms: bool = True
    """compute Figure 2's per-example training NLL at the fine-tuned and end-of-Grow stages"""
    tensorboard: bool = True
    """write TensorBoard logs under the run directory"""


@dataclass
class ExperimentConfig:
    task: str = "classification"
    """'classification' (sentence (pair) labels, e.g. MRPC), 'translation' (Multi30k with a generative policy)
    'prompts' (your own prompts and reward, see the `prompts` section), 'sentiment' (positive movie-review
    continuations, a proxy and a gold classifier: see the `sentiment` section) or 'arithmetic' (generated
    problems with a checked numeric answer: see the `arithmetic` section)"""
    method: str = "rest"
    """what `restlm run` runs: 'rest' (the experiment: baselines, G0I0, one ReST trajectory per grow size) or
    another registered method ('sft', 'rest_em', 'ppo', 'grpo', 'rloo', 'dpo'), run as `restlm compare` runs it"""
    plugins: list[str] = field(default_factory=list)
    """your own modules to import first (beside the config file or in the working folder): each registers a
    task (`@register_task`) or a method (`@register_method`) that `task` / `method` / `--methods` may then name"""
    variants: dict[str, dict] = field(default_factory=dict)
    """named variants of a method, for `restlm compare --methods`: `NAME: {method: rest, rest: {reward:
    correct}}` runs `rest` with those values over this config's (only the sections that method reads may
    change); compare reports it beside the others under NAME"""
    data: DataConfig = field(default_factory=DataConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rest: RestConfig = field(default_factory=RestConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    run: RunConfig = field(default_factory=RunConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """the `ppo` method of `restlm compare` (its seed, budget and kept step are set by compare)"""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    """the `grpo` and `rloo` methods of `restlm compare` (rloo: this section with advantage leave_one_out;
    seed, budget and kept step are set by compare)"""
    dpo: DpoConfig = field(default_factory=DpoConfig)
    """the `dpo` method of `restlm compare` (pairs: best against worst of rest.samples_per_input samples)"""
