"""ConvNet Explorer: home page and navigation.

Run with ``streamlit run app.py``. Every computation lives in ``cvcore``;
the pages in ``pages/`` are thin views over it.
"""
import streamlit as st

from ui.classroom import admit_session, is_operator
from ui.common import sidebar_device
from ui.jobs import sidebar_jobs
from ui.runtime import lighten_script_cleanup, send_without_delay
from ui.workspace import current_workspace, sign_in_page, sign_in_required, workspace_sidebar

st.set_page_config(page_title="ConvNet Explorer", page_icon=":material/grid_on:", layout="wide")  # pages: wide_layout()
lighten_script_cleanup()  # no full garbage collection after every run, fragments' included
send_without_delay()  # no 40 ms wait for a delayed ACK on every reused connection (once per process)

PAGES = {
    "filters": st.Page("pages/filters.py", title="Filters & convolution", icon=":material/filter_alt:", url_path="filters"),
    "train": st.Page("pages/train.py", title="Train a ConvNet", icon=":material/model_training:", url_path="train"),
    "data": st.Page("pages/data.py", title="Your image folders", icon=":material/folder_open:", url_path="data"),
    "augment": st.Page("pages/augment.py", title="Augmentation", icon=":material/auto_awesome_motion:",
                       url_path="augment"),
    "background": st.Page("pages/background.py", title="Background removal", icon=":material/grass:",
                          url_path="background"),
    "transfer": st.Page("pages/transfer.py", title="Transfer learning", icon=":material/move_up:",
                        url_path="transfer"),
    "visualize": st.Page("pages/visualize.py", title="What ConvNets learn", icon=":material/visibility:",
                         url_path="visualize"),
}
# The operator's page is listed for operators only; with sign-in off, an operator opens /operator and types the token.
OPERATOR = st.Page("pages/operator.py", title="Operator", icon=":material/admin_panel_settings:", url_path="operator",
                   visibility="visible" if is_operator() else "hidden")

START_HERE = [
    ("filters", "Hand-made kernels on MNIST digits and colour photographs; padding, stride, ReLU and pooling, "
                "step by step; the Keras `Conv2D` line that does the same."),
    ("train", "Build a layer stack or start from the chapters' models; SGD, momentum, Adam, L1/L2, dropout and "
              "batch normalization; live curves, runs compared side by side, confusion matrix, mistakes, "
              "activations, and a digit you draw."),
    ("data", "A zip of class folders or a server folder, checked file by file; images per class, sizes, samples, "
             "unreadable files; a stratified validation split that never moves a file."),
    ("augment", "Random rotations, shifts, shears, zooms and flips with Keras preprocessing layers, or the seed's "
                "imgaug pipeline; a seeded grid of versions and the recipe as code."),
    ("background", "Keep what is leaf-green with OpenCV (RGB and CIELUV distances, an HSV range, GrabCut), see the "
                   "mask, and clean a whole folder."),
    ("transfer", "VGG16, ResNet50, InceptionV3 or MobileNetV2 on your image folders: the logistic-regression "
                 "baseline first, then a frozen base with a new head, cached bottleneck features, fine-tuning, and "
                 "training from scratch, with each mode's cost, Keras' parameter counts and live curves."),
    ("visualize", "Every layer's activations, filters and classes by gradient ascent, saliency and SmoothGrad, "
                  "Grad-CAM, Grad-CAM++ and Score-CAM, on your model or VGG16 and friends."),
]


def home() -> None:
    st.title("ConvNet Explorer")
    st.markdown(
        "An interactive companion to three textbook chapters on computer vision with Keras: "
        "draw filters and watch them slide over digits and photographs, build and train "
        "ConvNets, bring your own image folders, reuse VGG16, and open the black box."
    )
    st.subheader("Start here")
    # A short link and the page's description beneath: a page link's label does not wrap.
    for key, blurb in START_HERE:
        st.page_link(PAGES[key], label=f"**{PAGES[key].title}**", icon=PAGES[key].icon)
        st.caption(blurb)
    st.subheader("The arc of the chapters")
    st.markdown(
        "1. **Filters**: a convolution is a small window of weights slid over an image; "
        "each position gives one number of a feature map.\n"
        "2. **Training ConvNets**: Keras learns those weights; optimizers, regularization, "
        "dropout and batch normalization shape the learning curves.\n"
        "3. **Real image folders**: augmentation and rule-based preprocessing get more out of few images.\n"
        "4. **Transfer learning**: a network pretrained on ImageNet, frozen, with a new head.\n"
        "5. **What ConvNets learn**: activations, filter visualizations, saliency and Grad-CAM."
    )


nav = st.navigation([st.Page(home, title="Home", icon=":material/home:", default=True), *PAGES.values(), OPERATOR])
if sign_in_required():  # sign-in is on and no one is signed in: every page's address shows the sign-in page
    sign_in_page()
else:
    ws = admit_session(current_workspace, nav.url_path or "home")  # a new session on a full class server stops here
    workspace_sidebar(ws)  # also keeps an anonymous workspace's token in the URL on every page
    sidebar_device()  # never blocks: the first visit starts TensorFlow's import in the background
    sidebar_jobs()  # never blocks long: the first visit starts the job service (Ray) in the background
    nav.run()
