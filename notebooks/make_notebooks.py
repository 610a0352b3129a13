"""Writes the chapter notebooks (``python notebooks/make_notebooks.py``): their text and cells live
here, as reviewable Python, and the .ipynb files are generated from it.

Which notebook shows a figure is its spec's (``FigureSpec.notebooks``): the text below places each
figure where the prose needs it, and one it does not place yet is added at the end of its notebook.

Rules the tests check: the first code cell prints library versions, the second is the
``parameters`` cell, code cells only call ftcore / viz / chapter / lab; widget and training cells are
tagged ``nbval-ignore-output``; cells tagged ``nbval-check-output`` print deterministic facts and
are the only ones committed with outputs (``--execute`` fills them in quick mode; ``--execute 09 10``
only those notebooks, keeping the committed outputs of unchanged checked cells elsewhere). Each
figure cell is one ``chapter.draw(...)`` expression (shown once); every live run sits behind a
widget's button, so Run All draws the reference figures at once and never trains by itself.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

SETUP = '''import os, sys
sys.path.insert(0, os.path.abspath(".."))  # the repository root, when opened from notebooks/
import ipywidgets as W
from IPython.display import display
import chapter, ftcore, lab, viz
from ftcore import RunConfig
print(lab.versions())'''

PARAMS = '''# parameters: FTLAB_QUICK=1 (the tests) shrinks every live run to a few steps
LANG = "zh"
viz.set_theme(LANG)'''


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(src, *tags):
    cell = nbf.v4.new_code_cell(src.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def fig(fid):
    return code(f'chapter.draw("{fid}", lang=LANG)', "nbval-ignore-output")


IGNORE, CHECK = "nbval-ignore-output", "nbval-check-output"

NOTEBOOKS = {
"01_全参数微调基础.ipynb": [
    md("""# 3.2.1 全参数微调基础

微调就是把一个已经在大规模语料上学过语言的模型，接到一个新任务上继续训练。本笔记本里的每一幅图都来自真实的训练记录：
模型是 all-MiniLM-L6-v2（6 层 Transformer 编码器），任务是烂番茄影评的情感分类。先看参考图（由 `make figures` 生成的记录即时绘制），再亲手训练一个小运行。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("## 微调的流程\n图中的层数、参数量、数据集大小都读自真实的模型文件和运行记录。"), fig("concept"),
    md("""## 从头训练、预训练+微调、冻结+微调
同一个网络结构，三种起点，训练集从 100 条到全部 8,925 条。图下方的“实测结论”由记录算出（配对种子的差值及其 95% 区间），说明这些数据对教材的说法给出什么判断。"""),
    fig("strategies"),
    md("## 每层不同的学习率\n学习率直接读自优化器的参数组：逐层衰减让底层学得更慢，判别式学习率每往下一层除以 2.6。"), fig("layer-lr"),
    code('''from ftcore.engine.optim import peak_lrs
from ftcore.engine.models import load_model
groups = ftcore.layer_groups(load_model(RunConfig().model, 2, seed=0))
for strategy in ("uniform", "layerwise", "discriminative"):
    lrs = peak_lrs(groups, RunConfig(lr=1e-4, lr_strategy=strategy, layer_decay=0.8))
    print(f"{strategy:15s}", "  ".join(f"{g}={v:.2e}" for g, v in lrs.items() if g in ("embeddings", "layer.0", "layer.5", "head")))''', CHECK),
    md("## 学习率调度与损失地形"), fig("schedules-basic"), fig("landscape"),
    md("""## 亲手训练一次
点击“训练”：在 1,000 条影评上训练两轮（126 步，每步 16 条，学习率 1e-4），在空闲的 2 核 CPU 上约半分钟。控件里的进度条和四条曲线（训练损失、梯度范数、学习率、验证准确率）随训练实时刷新；结束后给出 500 条测试影评上的准确率，并与“总猜多数类”的基线（0.578）比较。运行记录是若干张整洁的表格，任何一幅图都可以从它们重新画出来，控件最后显示其中 evals 表的几行。"""),
    code('''run = lab.widgets.LiveRun(title="全参数微调", show_record=True)
run''', IGNORE),
],
"02_参数冻结策略.ipynb": [
    md("""# 3.2.2 参数冻结策略

冻结就是让一部分层的参数在训练中保持不变：被冻结的层不需要梯度和优化器状态，反向传播也不必穿过冻结在底部的层。省下多少、准确率付出多少，下面的图按字节和实测准确率给出。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("## 冻结图：真实模型的层组\n颜色来自训练开始时各层组参数的 `requires_grad`。"), fig("freeze-map"),
    md("## 拖动滑块：冻结底部的 n 个层组\n滑块直接调用 `ftcore.engine.layers.freeze_to` 作用于真实模型，下方显示可训练参数量。"),
    code('explorer = lab.widgets.freeze_explorer()\nexplorer', IGNORE),
    code('''from ftcore.engine.layers import freeze_to
for n in (0, 4, 8):
    freeze_to(explorer.model, n)
    df = explorer.freeze_map()
    print(n, "frozen groups ->", f"{int(df.loc[df.trainable, 'n_params'].sum()):,}", "trainable parameters")''', CHECK),
    md("## 各策略的实测效果"), fig("freeze-effects"),
    md("""## 按数据量选策略
一条常见的经验规则：数据少于约 1 千条时冻结编码器只训练头部，1 千到 1 万条用逐层学习率（顶层大、底层小），更多时全参数微调。
下图在 300 到全部 8,925 条上把三种做法各训练 5 个种子（逐层学习率的顶层学习率由右侧的小扫描选出），中图是与全参数微调的配对差值。
图下的实测结论逐条检验这条规则在每个数据量上是否成立。"""), fig("data-size-strategy"),
    md("## 渐进解冻\n先只训练分类头，再从上往下逐层解冻。"), fig("unfreeze"),
    md("选择每隔几步多解冻一个层组，点击“训练”：控件显示训练曲线、测试准确率和记录下的解冻事件；下方的表格保留每次设置的结果，便于对比。"),
    code('''gradual = lab.widgets.GradualUnfreeze()
gradual''', IGNORE),
    md("## 每一层改变了多少"), fig("layer-drift"),
],
"03_任务特定的数据准备.ipynb": [
    md("""# 3.2.3 任务特定的数据准备

模型看到的不是文字，而是分词器和整理器（collator）产出的张量。不同任务需要不同的格式；数据的质量（标签是否可靠）往往比数量更重要。"""),
    code(SETUP), code(PARAMS, "parameters"),
    fig("task-formats"),
    md("## 自己输入一句话\n修改文本框中的句子，下面的表格会显示真实分词器与整理器的输出。"),
    code('box = lab.widgets.CollatorBox()\nbox', IGNORE),
    code('''from ftcore.engine.models import load_tokenizer
tok = load_tokenizer(RunConfig().model)
print(tok.tokenize("Fine-tuning a pretrained transformer is surprisingly effective."))''', CHECK),
    md("## 数据增强"), fig("augmentation"),
    md("## 标签噪声\n拖动滑块选择被随机翻转的训练标签比例，再点击按钮训练。结果里还给出：按单样本损失从高到低排，能找回多少被翻转的标签。"),
    fig("data-quality"),
    code('noise = lab.widgets.LabelNoise()\nnoise', IGNORE),
],
"04_学习率调度策略.ipynb": [
    md("""# 3.2.4 学习率调度策略

学习率决定每一步走多远。预热在训练开始时把步子放小，衰减在后期逐步减小学习率；它们在这个任务上实际带来了什么，见各图下方由记录算出的“实测结论”。下面的曲线都由 PyTorch / transformers 的真实调度器产生。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("## 调度器浏览器\n选择调度方式、预热方式与长度、衰减系数，曲线由训练时所用的同一段代码（`ftcore.engine.schedules`）即时算出。"),
    code('explorer = lab.widgets.schedule_explorer()\nexplorer', IGNORE),
    code('''from ftcore.engine.schedules import preview
lrs = preview(RunConfig(lr=1e-4, schedule="cosine", warmup="linear", warmup_ratio=0.1), 100, 100)["all"]
print([f"{lrs[i]:.2e}" for i in (0, 5, 10, 50, 99)])''', CHECK),
    fig("warmup"), fig("decay"), fig("adaptive"),
    md("## 学习率范围测试\n学习率从极小按指数增大，损失开始飙升之前下降最陡的地方，就是一个合理的起点。"), fig("lr-finder"),
    md("点击按钮运行一次真实的范围测试（100 步，学习率从 1e-7 按指数增大）。损失暴涨时测试按设计提前停止。"),
    code('''finder = lab.widgets.LRFinder()
finder''', IGNORE),
],
"05_常见问题和解决方案.ipynb": [
    md("""# 3.2.5 微调中的常见问题和解决方案

过拟合、训练不稳定、灾难性遗忘——每个问题都先看真实的运行，再看解决办法的实测效果。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("## 过拟合与欠拟合"), fig("fitting"), fig("regularization"),
    md("## 训练不稳定\n拖动学习率滑块（松开后不会立即训练），点击“训练”训练一个短运行：损失和梯度范数会告诉你它是否稳定。这里关闭了梯度裁剪和预热，好让问题显现。默认的 1e-4 能学到东西；把学习率调到 1.5e-3 以上再试，控件会标出模型是否坍缩成只猜一类，而不是简单地报告“完成”。"),
    fig("instability"),
    code('lr = lab.widgets.LRInstability()\nlr', IGNORE),
    fig("stability-fixes"),
    md("## 灾难性遗忘\n详见持续学习笔记本；这里先看结果。"), fig("forgetting"), fig("forgetting-pretrained"),
],
"06_本节总结.ipynb": [
    md("""# 3.2.6 本节总结：把检查清单变成“运行医生”

教材的检查清单（是否过拟合、是否发散、是否停滞、梯度是否爆炸、是否遗忘）在这里由 `ftcore.records.doctor` 自动读取运行记录来回答。先诊断参考运行，再诊断你自己的运行。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("## 本节的实测结论\n每一行都由参考运行的记录算出（配对种子的差值及其 95% 区间），与图集和各图下方的说明相同。"),
    code('chapter.summary(lang=LANG)', IGNORE),
    code('''from ftcore.records.doctor import diagnose
runs = chapter.inputs("instability")["runs"]
for labels, rec in runs:
    print(labels["setting"], "->", diagnose(rec).to_text("zh"), "\\n")''', IGNORE),
    md("## 诊断你自己的运行\n选择学习率、是否裁剪梯度，点击“训练”：训练结束后，运行医生给出诊断。试试把学习率调到 3e-3 并关闭裁剪。"),
    code('''mine = lab.widgets.DoctorRun()
mine''', IGNORE),
],
"07_持续学习与遗忘.ipynb": [
    md("""# 持续学习与灾难性遗忘

一个编码器依次学习三个任务（影评情感 → 新闻主题 → 主观/客观），每个任务一个分类头。学新任务时，旧任务会被忘掉多少？EWC、经验回放、知识蒸馏（LwF）、每任务一套 LoRA 以及回放+EWC 的组合各能保住多少？多任务联合训练（学每个新任务时混入之前所有任务的数据）是它们的上界。

对照表里还有种子 001 的两个设置：EWC 的 λ = 1,000 与回放 3%。λ 该取多大取决于 Fisher 信息的量级，这里默认用为这个编码器实测所需的 1e6；表里把种子 001 的 λ = 1,000 放在旁边，图下的结论给出两者与直接微调相比的差别。"""),
    code(SETUP), code(PARAMS, "parameters"),
    fig("forgetting"), fig("continual-table"), fig("forgetting-pretrained"),
    md("## 自己试：EWC 的 λ 与回放比例\n选择方法、调节 λ 或回放比例，点击按钮训练一个两任务序列（影评情感 → 新闻主题，每个任务 500 条、两轮）。两个任务都要先学会，遗忘才有意义：控件会检查这一点，并把每次的设置和遗忘量列在表里。"),
    code('ctl = lab.widgets.ForgettingControl()\nctl', IGNORE),
],
"08_参数高效微调.ipynb": [
    md("""# 参数高效微调（PEFT）

LoRA 只训练低秩的增量矩阵，提示微调只训练若干个“虚拟词元”，BitFit 只训练偏置，瓶颈适配器在每层插入一个“降维—非线性—升维”的小网络，前缀微调在每层注意力的键和值前面加上可训练的前缀。它们可训练的参数少得多——代价和收益都在下图里实测。

适配器和前缀微调是本项目自己写的（`ftcore/engine/adapters.py`、`ftcore/engine/prefix.py`，都很短，值得读）：`adapters` 库只支持 transformers 4.x，而 peft 的前缀微调在 transformers 5 的 BERT 类编码器上无法把前缀送进注意力。LoRA 也有一份手写版（`ftcore/engine/lora.py`，`peft="lora_scratch"`），测试保证它与 peft 的输出和参数量一致。"""),
    code(SETUP), code(PARAMS, "parameters"),
    fig("peft"),
    code('''from ftcore.engine.models import load_model
from ftcore.engine.peft_methods import apply_peft, trainable_summary
for name, kw in [("LoRA r=2", dict(peft="lora", lora_r=2)), ("LoRA r=8", dict(peft="lora", lora_r=8)),
                 ("LoRA r=32", dict(peft="lora", lora_r=32)), ("adapter", dict(peft="adapter")),
                 ("prefix", dict(peft="prefix"))]:
    m = apply_peft(load_model(RunConfig().model, 2, seed=0), RunConfig(**kw))
    s = trainable_summary(m)
    print(f"{name:9s}: {s['trainable_params']:,} trainable of {s['total_params']:,} ({s['trainable_pct']:.2f}%)")''', CHECK),
    md("## 选择 LoRA 的秩，训练一次\nLoRA 的增量矩阵从零开始，需要比全参数微调大的学习率：这里用实测扫出的 3e-3（1e-3 偏低，3e-4 会停在多数类）。"),
    code('lora = lab.widgets.LoraRank()\nlora', IGNORE),
],
"09_预训练目标.ipynb": [
    md("""# 预训练目标：模型在预训练时看到了什么

掩码语言模型（MLM）遮住约 15% 的词元让模型去猜；因果语言模型（CLM）让每个位置预测下一个词元；T5 式的跨度破坏把连续的片段换成哨兵符号。下面是真实的整理器对同一句话的输出。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("""修改文本框中的句子，下面的表格会随之更新。读表时注意三点：

- **因果语言模型的错位。** Hugging Face 的整理器输出的 `labels` 与 `input_ids` 一模一样，错位（第 t 个位置预测第 t+1 个词元）发生在模型计算损失的时候。“显式错位”表把它摊开：左边是模型到第 t 步为止读到的词元，右边是它要预测的下一个词元。这张表按解码器（GPT 式）模型的习惯不加 BERT 的 [CLS]/[SEP]——那两个符号是编码器做分类时用的。
- **MLM 的 80/10/10 规则。** 被选中的约 15% 的位置里，80% 换成 [MASK]，10% 换成随机词元，10% 保持原样；三种情况都要预测原词。“保持原样”的行看起来没有被遮住，但它的标签不是 -100，模型仍要预测它——这样模型不能只在看到 [MASK] 时才用心。
- **中文为什么变成 [UNK]。** 见表格下方的说明；在文本框里输入一句中文试试。"""),
    code('box = lab.widgets.CollatorBox(explain=True)\nbox', IGNORE),
    code('''views = box.result
print(views["causal_shift"].to_string(index=False))
print(views["mlm_rule"].to_string(index=False))
print(views["span_corruption"].to_string())''', CHECK),
],
"10_训练监控.ipynb": [
    md("""# 监控一次微调

训练时最该盯住的是：训练与验证损失、梯度范数、学习率。下面先用本项目的训练循环实时画出它们，再用 Hugging Face `Trainer` 训练，并通过 `RecordingCallback` 得到同样格式的运行记录。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("点击“训练”开始（1,000 条影评、两轮，约半分钟）。"),
    code('''run = lab.widgets.LiveRun(title="实时监控")
run''', IGNORE),
    md("""## Hugging Face Trainer + RecordingCallback
同样的数据和模型交给 `transformers.Trainer`（`ftcore.engine.hf.train_hf`）：训练中每 25 步在验证集上评估一次，`compute_metrics` 算准确率、macro-F1 和每一类的精确率/召回率/F1，只打印几行日志（而不是每步一行），结束后在测试集上评估。`RecordingCallback` 把这次训练写成和上面一样的运行记录，于是运行医生（`ftcore.records.doctor.diagnose`）可以直接诊断它；没有评估的记录，医生会明说“没有可评判的评估”，而不是“未发现问题”。

勾选“完整配方”，就是种子文档里交给 `Trainer` 的那一套：分层学习率的参数组（顶层 2e-4，向下每层 ×0.9，通过 `optimizers=(优化器, None)` 交给 Trainer，调度器由 Trainer 按组建立）、`label_smoothing_factor=0.1`、`EarlyStoppingCallback`（验证准确率连续 2 次不升就停）加 `load_best_model_at_end`（训练结束时载回最佳检查点）。点击后，`hf.result` 就是这条记录；两次结果会并排留在表里。"""),
    code('''hf = lab.widgets.HFTrainerRun()
hf''', IGNORE),
    md("""## 在 TensorBoard 里看运行记录
`ftcore tensorboard 记录目录... --logdir 目录` 把一条或多条已保存的运行记录写成 TensorBoard 事件文件：每步的训练损失、每个层组的学习率和梯度范数（裁剪前）、每个数据划分上的每个评估指标，以及事件（解冻、早停、发散……）的文字。然后在终端运行 `tensorboard --logdir 目录`，浏览器打开 http://localhost:6006。下面的单元把上面点击“训练”得到的记录（`run.result`）写进 `tb_logs/`；命令行对 `runs/cache/<运行 id>` 做同样的事。"""),
    code('''from ftcore.records.tensorboard import write_record
if run.result is not None:  # after clicking 训练 above
    print(write_record(run.result, "tb_logs", "live-run"))
print("ftcore tensorboard runs/cache/<run id> --logdir tb_logs")
print("tensorboard --logdir tb_logs   # then open http://localhost:6006")''', IGNORE),
    md("""## 用 PyTorch Lightning 训练同一个配置
种子文档 002 用 PyTorch Lightning 训练 AG News 新闻分类器；本项目没有 AG News，用同为新闻主题分类的 `bbc-topic` 代替。`ftcore.engine.lightning` 的 `FtcoreLightningModule` 用的是同一个模型、数据、优化器参数组和学习率调度，`RecordingCallback`（一个 Lightning 回调）把训练写成同样的运行记录，图、运行医生和 TensorBoard 都能读。命令行：`ftcore lightning --task bbc-topic --train-size 1000 --epochs 2`（需要 `pip install lightning`）。"""),
    code('''from ftcore.engine.lightning import train_lightning
cfg = RunConfig(task="bbc-topic", train_size=1000, epochs=2)
print(cfg)
print("rec = train_lightning(cfg)   # or: ftcore lightning --task bbc-topic --train-size 1000 --epochs 2")''', IGNORE),
    md("""## 三种训练循环，结果一样吗？
同一个配置分别交给本项目的循环、HF `Trainer` 和 Lightning，各训练 3 个配对种子（同一训练子集与初始化，数据顺序各自抽取）：影评情感和新闻主题（`bbc-topic`）用基准设置，第三列是上面的完整配方。三种循环应当在种子噪声之内一致；图后的结论给出配对差值和 95% 区间（区间跨过 0，就说明这些种子分不出两者的差别）。下面的图直接从已保存的运行记录画出。"""),
    fig("engines"),
    md("""## 保存模型，拿来预测
运行记录不含权重。`ftcore run ... --save-model 目录` 训练后把模型存成普通的 transformers 文件夹（LoRA 会合并进权重；标签名、运行 id 写在 config 和 `ftcore.json` 里），`ftcore predict 目录 "文本" ...`（或 `--file 每行一条.txt`）打印每条文本的标签和各类概率。用 mean pooling 训练的模型另附一个小文件 `modeling_ftcore.py`，加载时要传 `trust_remote_code=True`。"""),
    code('''print("ftcore run --task rt-sentiment --train-size 1000 --epochs 2 --save-model my-model")
print('ftcore predict my-model "a moving, beautifully acted film" "dull and far too long"')
print("from transformers import AutoModelForSequenceClassification, AutoTokenizer")
print('model = AutoModelForSequenceClassification.from_pretrained("my-model")')''', IGNORE),
],
"11_从头预训练.ipynb": [
    md("""# 从头预训练：分词器、小 RoBERTa 与继续预训练

前面的笔记本都从一个现成的预训练模型出发。它从哪里来？这里在 2 核 CPU 上把这件事缩小了真做一遍：
先在离线语料（影评、剧情简介、BBC 新闻的**训练划分**，验证和测试文本一律剔除）上训练一个字节级 BPE 分词器，
再用掩码语言模型（MLM）从随机权重预训练一个 4 层的小 RoBERTa，然后把它和“同结构随机初始化”“默认预训练模型”放在同一个情感任务上比较。
最后看另一条路：不从头训练，而是让默认模型在影评文本上**继续预训练**（领域自适应），它对小数据微调有没有帮助、又让通用知识付出了多少代价。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("""## 1. 字节级 BPE 分词器
字节级 BPE 从 256 个字节出发，反复合并语料中最常见的相邻符号对，直到词表达到指定大小；任何文本都能切分，不会出现 [UNK]。
特殊符号沿用 RoBERTa 的约定：`<s>`=0、`<pad>`=1、`</s>`=2、`<unk>`=3、`<mask>`=4。词元前的 `Ġ` 表示它前面有一个空格。"""),
    code('''from ftcore.pretraining.tokenizer import SPECIAL_TOKENS, pretraining_texts, train_bpe_tokenizer
texts = pretraining_texts()
tok = train_bpe_tokenizer(texts, vocab_size=8000)
print(f"{len(texts):,} texts; vocabulary {len(tok):,};", {s: tok.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS})
print(tok.tokenize("An unexpectedly moving, beautifully acted film."))''', CHECK),
    md("选择词表大小，点击按钮重新训练分词器：词表越小，一个词被切成的碎片越多，同样长度的输入装下的文字越少。"),
    code('explorer = lab.pretraining.TokenizerExplorer()\nexplorer', IGNORE),
    md("""## 2. 用 MLM 预训练一个小 RoBERTa，再微调
每个训练序列是把文本首尾相接、用 `</s>` 隔开后切出的 64 个词元；`DataCollatorForLanguageModeling` 随机选中 15% 的词元让模型去猜。
左图是掩码词元的准确率和损失（线：训练批次；点：留出文本），右图是三种起点在影评情感上微调后的测试准确率。下面一行是这次预训练的实测数字。"""),
    code('print(lab.pretraining.facts())', IGNORE),
    fig("pretraining"),
    md("在句子里放一个 `<mask>`，点击按钮，看本地预训练的模型猜什么。只读过一百万词量级文本的小模型，多半只会猜高频词——这正说明了默认模型背后那数十亿词的预训练买到了什么。"),
    code('fill = lab.pretraining.FillMask()\nfill', IGNORE),
    md("""## 3. 继续预训练（领域自适应）
默认模型 all-MiniLM-L6-v2 是句向量模型，检查点里没有 MLM 头：输出层与词嵌入绑定、偏置为零，中间的变换层随机初始化（用较大的学习率 1e-3 先把它学起来，编码器本身用 1e-5 或 1e-4）。
在影评情感训练划分的文本（不用标签）上继续 400 步 MLM，再在 100 / 300 / 1,000 条影评上微调，与不继续预训练的模型配对比较；右图用 `forgetting-pretrained` 的同一个线性探针（新闻主题）衡量通用知识的损失。"""),
    fig("continual-pretraining"),
],
"12_量化.ipynb": [
    md("""# 量化：把微调好的分类器变成 int8

部署时常把模型的权重从 32 位浮点数压到 8 位整数：文件更小，CPU 上的矩阵乘法更快，代价是数值误差。有两条路：
**训练后量化**——模型照常微调，之后一次性转换；**量化感知微调**——微调时就在前向传播里模拟 int8 的舍入（伪量化），让权重适应它，之后再转换。
本笔记本用基准设置（1,000 条影评、两轮）微调的真实分类器比较 fp32、bf16 和几种 int8：准确率、磁盘大小、每条影评的 CPU 延迟，全部来自记录。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("""## 量化动了哪些层
动态量化只替换 `nn.Linear`：每层的 query、key、value、注意力输出、中间层、输出，再加分类头，共 37 个。它们的权重存成 int8（每个矩阵一个对称尺度），输入在每次调用时按当前张量的最小/最大值临时量化。
嵌入表和 LayerNorm 保持 fp32——而在这个小模型里，嵌入表占了一半以上的参数，所以只量化线性层时，文件并不会缩到四分之一。下表按层的种类列出个数和参数量。"""),
    code('print(lab.quantization.quantized_layers().to_string(index=False))', CHECK),
    md("""## 实测：准确率、大小、延迟
每个种子重新微调两次：一次按原配方（得到 fp32、bf16、训练后 int8、嵌入也存 8 位的 int8），一次带伪量化（量化感知 int8）。准确率是 500 条测试影评逐条输入的结果；细线连接同一个种子的各种形态，配对比较就沿着这些线做。
延迟只对测量它的这台 CPU 成立；测量时机器上还有其他进程，图下注明了计时期间本进程实际拿到的 CPU 份额。"""),
    fig("quantization"),
    md("同样的数字列成表（95% 区间为种子间的 t 区间；“与 fp32 预测一致”是 500 条测试预测中与 fp32 相同的比例）："),
    code('lab.quantization.measured_table()', IGNORE),
    md("""## 为什么不直接照搬静态量化的写法
常见的示例代码给整个模型设置 `get_default_qconfig("fbgemm")` 再调用 `prepare_qat`。那是**静态**量化的配置：激活的尺度在训练中统计后固定下来，浮点张量进入量化层之前要经过 `QuantStub`、出来之后要经过 `DeQuantStub`。Hugging Face 的编码器里没有这些桩，转换后的量化线性层收到的仍是浮点输入，一运行就会出错；层与层之间的张量运算（注意力里的矩阵乘法、残差相加）在 eager 模式下也不会被自动处理。
这里用的是**动态**量化的量化感知训练：`torch.ao.nn.qat.dynamic.Linear` 在前向传播中伪量化权重，我们再对每个线性层的输入做同样的伪量化；观测器都是“无记忆”的（只看当前张量），与转换时 `quantize_dynamic` 计算尺度的方式一致。"""),
    code('''from ftcore.analysis import quantization as q
print(q.qconfig())
print("int8 = q.quantize_int8(model)                 # 训练后动态量化（模型本身不变）")
print("qat = q.prepare_qat(model)  →  训练  →  q.convert_qat(qat)   # 量化感知微调")''', IGNORE),
    md("""## 自己试：微调并量化一次
点击按钮：在现场设置（1,000 条影评、两轮，种子 0）上做同样的比较，两次微调加评估和计时，正常模式下需要几分钟。结果会和上面的参考数字有出入——只有一个种子，计时也受机器当时负载的影响。"""),
    code('live = lab.quantization.QuantizeLive()\nlive', IGNORE),
],
"13_指令微调与RLHF.ipynb": [
    md("""# 指令微调与 RLHF：在小尺度上真跑一遍

种子文档 003 的最后几步——监督式指令微调、在偏好数据上训练奖励模型、带 KL 惩罚的强化学习——这里都在 2 核 CPU 上真实运行：
模型是本地从零预训练的微型 GPT-2（几百万参数，只读过训练集里的影评和剧情简介），奖励模型是项目默认的编码器 all-MiniLM-L6-v2。
先看参考图与记录里的表，再用两个旋钮自己跑：提示掩码开或关，KL 系数 β 大或小。"""),
    code(SETUP), code(PARAMS, "parameters"),
    md("""## 1. 微型 GPT：从零预训练
分词器是在同一语料上训练的字节级 BPE；模型是 `GPT2LMHeadModel`。下面一行给出它的规模、语料、训练步数和时间，以及留出影评（验证集，从未参与训练）上的困惑度。"""),
    code('print(lab.alignment.gpt_facts())', IGNORE),
    md("在几个检查点上，从固定的开头采样续写（温度 0.8）：第 0 步是随机的字节拼接，训练后才像影评。"),
    code('lab.alignment.pretraining_samples()', IGNORE),
    md("""## 2. 指令微调与提示掩码
每条样本是“指令 + 文本 + Answer: 答案”。提示掩码把提示部分的标签设为 -100，损失只算在答案的词元上；不掩码时，模型还要学着复述指令和影评，而答案只占几个词元。下表是第一条训练样本最后几个位置的标签（标签表示读完该位置左边的内容后要预测的词元，模型内部会错开一位）。"""),
    code('lab.alignment.mask_table()', IGNORE),
    fig("instruction-tuning"),
    md("每个任务分别的答案准确率（三个种子的均值；未微调的模型几乎从不按“Answer: 词”的格式作答）："),
    code('lab.alignment.accuracy_by_task()', IGNORE),
    md("""### 自己试：提示掩码开或关
勾选或取消“提示掩码”，点击“微调”：从同一个预训练模型出发，做一次较短的指令微调，再在留出样本和留出措辞上测答案准确率。表中的“答案损失”只统计答案词元，两种设置可以直接比较。"""),
    code('toggle = lab.alignment.MaskToggle()\ntoggle', IGNORE),
    md("""## 3. 奖励模型：同一部电影的好评胜过差评
偏好对来自真实数据：同一部电影的一条好评（选中）和一条差评（拒绝），目标是“写一篇正面影评”。Bradley–Terry 损失让选中文本的分数高于被拒绝的。下表是留出影评里得分最高和最低的几条，以及它们真实的好评/差评标签。"""),
    code('lab.alignment.reward_top_bottom()', IGNORE),
    md("""## 4. RLHF：奖励与 KL 的拉锯
策略（微型 GPT）从训练集影评的前两个词开始续写；奖励模型打分，减去 β 乘以相对初始模型的 KL。这里用自己写的 RLOO（同一开头采样 4 次，其余 3 次的平均奖励作基线），没有用 trl 的 PPO：trl 不在本项目的依赖里，PPO 还需要再训练一个价值模型。β 小时策略可以走得更远，奖励更高，但要留意它是不是在“投机”奖励模型（重复、退化的文本）。"""),
    fig("rlhf"),
    md("训练前后的样本（种子 0），以及奖励模型给它们的分数："),
    code('lab.alignment.rlhf_samples()', IGNORE),
    md("""### 自己试：KL 系数 β
选择 β，点击“RL 训练”：从预训练的微型 GPT 出发跑一段 RLOO，控件画出奖励和 KL 随步数的变化，并列出训练前后的样本。把 β 设为 0 再试一次，看看奖励升高的同时文本变成了什么样子。"""),
    code('knob = lab.alignment.KLKnob()\nknob', IGNORE),
],
}


def _checked_outputs(path: Path) -> dict[str, tuple]:
    """The committed outputs of a notebook's checked cells, by source (kept when a cell is unchanged)."""
    if not path.exists():
        return {}
    old = nbf.read(path, as_version=4)
    return {c.source: (c.outputs, c.execution_count) for c in old.cells
            if c.cell_type == "code" and CHECK in c.metadata.get("tags", [])}


def _registry():
    sys.path.insert(0, str(HERE.parent))
    from chapter import figures  # noqa: F401 (registers the figures)
    from chapter.registry import REGISTRY
    return REGISTRY


def _drawn(cell) -> str | None:
    """The figure id a ``chapter.draw("...")`` cell draws, else None."""
    src = cell.source if cell.cell_type == "code" else ""
    return src.split('"')[1] if src.startswith("chapter.draw(") else None


def notebook_cells(name: str) -> list:
    """The cells of notebook ``name`` as written above, completed from the registry: a figure whose
    spec names this notebook (``FigureSpec.notebooks``) but which the text does not place yet comes
    at the end under its title, and after each figure that tests claims of the chapter comes a cell
    with its verdicts, computed from the records (``chapter.findings``), so the notebooks' statements
    of results cannot drift from them."""
    registry, number = _registry(), name[:2]
    cells = list(NOTEBOOKS[name])
    placed = [fid for fid in map(_drawn, cells) if fid]
    wrong = [fid for fid in placed if number not in registry[fid].notebooks]
    if wrong:
        raise ValueError(f"{name} draws {wrong}, whose specs do not name notebook {number} (FigureSpec.notebooks)")
    for fid, spec in registry.items():
        if number in spec.notebooks and fid not in placed:
            cells += [md(f"## {spec.title['zh']}"), fig(fid)]
    out = []
    for cell in cells:
        out.append(cell)
        if (fid := _drawn(cell)) and registry[fid].claims:
            out.append(code(f'chapter.findings("{fid}", lang=LANG)', IGNORE))
    return out


def build() -> list[Path]:
    paths = []
    for name in NOTEBOOKS:
        cells = notebook_cells(name)
        kept = _checked_outputs(HERE / name)
        for n, cell in enumerate([c for c in cells if c.cell_type == "code"], 1):
            if CHECK in cell.metadata.get("tags", []) and cell.source in kept:
                cell.outputs, cell.execution_count = kept[cell.source][0], n
        for i, cell in enumerate(cells):  # stable ids: regenerating changes only what changed
            cell["id"] = f"cell-{i:03d}"
        nb = nbf.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        path = HERE / name
        nbf.write(nb, path)
        paths.append(path)
    return paths


def execute(paths: list[Path]) -> None:
    """Run each notebook in quick mode and keep only the outputs of nbval-check-output cells."""
    import os

    from nbclient import NotebookClient
    os.environ["FTLAB_QUICK"] = "1"
    for path in paths:
        nb = nbf.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        nb.metadata.pop("widgets", None)  # the executed widgets' saved state: bulky, stale in a browser
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        for n, cell in enumerate(code_cells, 1):
            cell.metadata.pop("execution", None)
            if CHECK not in cell.metadata.get("tags", []):
                cell.outputs, cell.execution_count = [], None
            else:  # the printed facts only (stderr carries library chatter); nbval needs a count
                cell.outputs = [o for o in cell.outputs if o.get("name") == "stdout"]
                cell.execution_count = n
        nbf.write(nb, path)


if __name__ == "__main__":
    written = build()
    if "--execute" in sys.argv:
        only = sys.argv[sys.argv.index("--execute") + 1:]  # notebook prefixes, e.g. 09 10 (default: all)
        execute([p for p in written if not only or any(p.name.startswith(o) for o in only)])
    print(f"wrote {len(written)} notebooks in {HERE}")
